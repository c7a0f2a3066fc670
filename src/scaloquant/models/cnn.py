"""The two CNNs of the paper: one on 2-D scalograms, one on 1-D spectra, same design.

The paper (Sec. 2.3, Fig. 1) describes "6 blocks, which comprise a Convolutional, Rectifier and
Max-pooling layer", five max-pooling layers in all, then "a fully connected and a regression layer
(which has 21 outputs)". In MATLAB the regression layer only adds the loss, so the network ends in
one linear layer with 21 outputs. Widths and kernel sizes are not given in the paper; ours are
documented in :data:`DEFAULT_WIDTHS` and :data:`DEFAULT_KERNEL_SIZE`.

Normalisation layers are optional (``norm="batch"`` inserts BatchNorm between convolution and
ReLU). The paper has none, so the ``paper`` training preset uses ``norm="none"``; the other
presets use BatchNorm because it let the networks train at the larger learning rates a 2-core CPU
budget needs (see :mod:`scaloquant.train.config`).

The flattening before the linear layer is deliberate (no global pooling): a metabolite is told
apart by *where* its peaks are in frequency, which a global average would throw away.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..errors import ConfigError

Norm = Literal["batch", "none"]

#: Channel widths of the six convolution blocks (doubling every other block; the paper gives none).
DEFAULT_WIDTHS: tuple[int, ...] = (16, 32, 64, 64, 128, 128)
#: Kernel size of every convolution (3 x 3 in 2-D, 3 in 1-D).
DEFAULT_KERNEL_SIZE = 3


def kernel_tuple(kernel_sizes: int | Sequence[int], n_blocks: int) -> tuple[int, ...]:
    """One odd kernel size per block from an int (same for all) or a sequence."""
    if isinstance(kernel_sizes, int):
        kernels = (kernel_sizes,) * n_blocks
    else:
        kernels = tuple(int(k) for k in kernel_sizes)
    if len(kernels) != n_blocks:
        raise ConfigError(
            f"got {len(kernels)} kernel sizes for {n_blocks} blocks; give one per block"
        )
    if any(k < 1 or k % 2 == 0 for k in kernels):
        # odd kernels keep "same" padding symmetric, so the shape rule below is exact
        raise ConfigError(f"kernel sizes must be odd positive integers, got {list(kernels)}")
    return kernels


class ConvRegressor(nn.Module):
    """``len(widths)`` blocks of convolution (+ optional BatchNorm) + ReLU, max-pooling (2) after
    every block but the last, then one linear layer.

    Parameters
    ----------
    input_shape : ``(channels, *spatial)``; ``spatial`` has 1 (spectrum) or 2 (scalogram) sizes.
    widths : output channels of each block.
    kernel_sizes : odd kernel size per block (or one for all).
    n_outputs : number of regression outputs (21: 20 metabolites + MM).
    norm : ``"batch"`` or ``"none"``.

    Shapes: ``forward`` maps ``(B, *input_shape)`` to ``(B, n_outputs)``.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        *,
        widths: Sequence[int] = DEFAULT_WIDTHS,
        kernel_sizes: int | Sequence[int] = DEFAULT_KERNEL_SIZE,
        n_outputs: int = 21,
        norm: Norm = "batch",
    ) -> None:
        super().__init__()
        input_shape = tuple(int(s) for s in input_shape)
        dims = len(input_shape) - 1
        if dims not in (1, 2):
            raise ConfigError(
                f"input shape {input_shape} must be (channels, length) or (channels, h, w)"
            )
        widths = tuple(int(w) for w in widths)
        if not widths or min(widths) < 1:
            raise ConfigError(f"widths must be positive integers, got {list(widths)}")
        if norm not in ("batch", "none"):
            raise ConfigError(f"norm must be 'batch' or 'none', got {norm!r}")
        kernels = kernel_tuple(kernel_sizes, len(widths))
        n_pools = len(widths) - 1
        spatial = input_shape[1:]
        if min(spatial) < 2**n_pools:
            raise ConfigError(
                f"input of spatial size {spatial} is too small for {n_pools} poolings by 2; "
                f"each size must be at least {2**n_pools}"
            )
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        batch_norm = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
        pool = MaxPool1dBy2 if dims == 1 else MaxPool2dBy2
        layers: list[nn.Module] = []
        c_in = input_shape[0]
        for i, (width, k) in enumerate(zip(widths, kernels, strict=True)):
            # a bias before BatchNorm is cancelled by its mean subtraction
            layers.append(conv(c_in, width, k, padding=k // 2, bias=norm == "none"))
            if norm == "batch":
                layers.append(batch_norm(width))
            layers.append(nn.ReLU(inplace=True))
            if i < n_pools:
                layers.append(pool())
            c_in = width
        self.features = nn.Sequential(*layers)
        out_spatial = [s // 2**n_pools for s in spatial]  # MaxPool(2) floors each size
        self.head = nn.Linear(widths[-1] * math.prod(out_spatial), n_outputs)
        self.input_shape = input_shape
        #: elements of the largest activation of one signal (a block's convolution output)
        self.largest_activation = max(
            width * math.prod(s // 2**i for s in spatial) for i, width in enumerate(widths)
        )

    @property
    def n_features(self) -> int:
        """Length of the flattened feature vector the linear head reads."""
        return self.head.in_features

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Flattened output of the convolution blocks: ``(B, *input_shape) -> (B, n_features)``."""
        return torch.flatten(self.features(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


class ScalogramCNN(ConvRegressor):
    """The paper's CNN on 2-channel scalograms: ``(B, C, S, T) -> (B, n_outputs)``.

    ``input_shape`` is ``ScalogramConfig.output_shape`` ``(C, S, T)``; the scalogram is computed from
    the first ``ScalogramConfig.n_points`` samples of the FID (1536 of 2048 in the paper).
    """

    def __init__(self, input_shape: Sequence[int], **kwargs) -> None:
        if len(input_shape) != 3:
            raise ConfigError(
                f"ScalogramCNN needs a (channels, scales, time) input, got {input_shape}"
            )
        super().__init__(input_shape, **kwargs)


class SpectrumCNN(ConvRegressor):
    """The same design with 1-D convolutions on a spectrum: ``(B, 2, L) -> (B, n_outputs)``.

    The 2 channels are the real and imaginary parts of the spectrum (see
    :class:`scaloquant.models.transforms.SpectrumTransform` for which samples it is computed from).
    """

    def __init__(self, input_shape: Sequence[int], **kwargs) -> None:
        if len(input_shape) != 2:
            raise ConfigError(f"SpectrumCNN needs a (channels, length) input, got {input_shape}")
        super().__init__(input_shape, **kwargs)


def inference_copy(network: ConvRegressor) -> ConvRegressor:
    """A copy of ``network`` for fast evaluation: every BatchNorm folded into the convolution
    before it, and 2-D networks in the channels-last memory format.

    Same outputs as ``network.eval()`` up to float32 rounding (the folded weights are
    ``W * gamma / sqrt(var + eps)``, biases ``(b - mean) * gamma / sqrt(var + eps) + beta``:
    :func:`torch.nn.utils.fusion.fuse_conv_bn_eval`). Why: on CPU, eval-mode BatchNorm cost 39 %
    and max-pooling in NCHW 31 % of the ``cpu``-preset scalogram CNN's time; folding removes the
    former, channels-last lets oneDNN convolve without layout conversions, max-pooling
    becomes :class:`MaxPool2x2ChannelsLast`, and each ReLU moves behind its pooling (the same
    result on a quarter of the elements). The copy
    has no gradients and must not be trained (its BatchNorm statistics are frozen into it).
    Inputs of a 2-D copy should be channels-last too
    (``x.contiguous(memory_format=torch.channels_last)``); others are converted by the first
    convolution.
    """
    fused = copy.deepcopy(network).eval()
    layers = list(fused.features)
    for i, layer in enumerate(layers[:-1]):
        bn = layers[i + 1]
        if isinstance(layer, (nn.Conv1d, nn.Conv2d)) and isinstance(
            bn, nn.modules.batchnorm._BatchNorm
        ):
            layers[i] = fuse_conv_bn_eval(layer, bn)
            layers[i + 1] = nn.Identity()
    layers = [m for m in layers if not isinstance(m, nn.Identity)]
    if len(fused.input_shape) == 3:
        layers = [MaxPool2x2ChannelsLast() if isinstance(m, nn.MaxPool2d) else m for m in layers]
    # max(relu(a), relu(b)) = relu(max(a, b)): pooling first leaves the ReLU a quarter of the work
    for i in range(len(layers) - 1):
        if isinstance(layers[i], nn.ReLU) and isinstance(
            layers[i + 1], nn.MaxPool2d | MaxPool2x2ChannelsLast | nn.MaxPool1d
        ):
            layers[i], layers[i + 1] = layers[i + 1], layers[i]
    fused.features = nn.Sequential(*layers)
    if len(fused.input_shape) == 3:
        fused = fused.to(memory_format=torch.channels_last)
    return fused.requires_grad_(False)


class MaxPool2x2ChannelsLast(nn.Module):
    """``nn.MaxPool2d(2)`` (odd sizes floored) for channels-last inputs, as two element-wise
    maxima over strided views of the ``(B, H, W, C)`` memory: exact, and 3.5 times faster than
    PyTorch's channels-last max-pooling on CPU (24 against 86 ms for 64 x 8 x 128 x 384, 1
    thread), which also computes the indices a backward pass would need."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        nhwc = x.permute(0, 2, 3, 1)[:, : h // 2 * 2, : w // 2 * 2]
        # (B, H/2, 2, W/2, 2C): rows in pairs, and each pair of columns side by side in the last axis
        pairs = nhwc.reshape(b, h // 2, 2, w // 2, 2 * c)
        rows = torch.maximum(pairs[:, :, 0], pairs[:, :, 1])
        return torch.maximum(rows[..., :c], rows[..., c:]).permute(0, 3, 1, 2)


class _MaxPoolBy2(torch.autograd.Function):
    """Max-pooling by 2 of the last ``dims`` axes (windows 2 or 2 x 2, stride 2, sizes floored)
    with the values and gradients of :func:`torch.nn.functional.max_pool2d`.

    The maxima come from strided views (rows first, whose inner axis is contiguous), the index
    of each window's maximum is PyTorch's (the first maximal element in row-major order:
    PyTorch keeps a candidate only if it is strictly greater), and the backward pass is
    PyTorch's own kernel on those indices, so the gradients are PyTorch's bit for bit. NaN
    windows are the one difference: both give NaN, but PyTorch sends the gradient to the last
    NaN and this to the last element of the window.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, dims: int) -> torch.Tensor:
        x2 = x.unsqueeze(-2) if dims == 1 else x  # (..., 1, L): a 1 x 2 window
        h, w = x2.shape[-2:]
        kh = 1 if dims == 1 else 2
        crop = x2[..., : h // kh * kh, : w // 2 * 2]
        rows = crop if kh == 1 else torch.maximum(crop[..., 0::2, :], crop[..., 1::2, :])
        out = torch.maximum(rows[..., 0::2], rows[..., 1::2])
        # index of the first maximal element in the flattened (h, w) plane, as PyTorch's:
        # the window's base plus the offset (0, 1, w, w + 1) of the first candidate equal to
        # the maximum, counted as sum_k [candidates 0..k all differ] * (offset_{k+1} - offset_k)
        offsets = (0, 1) if kh == 1 else (0, 1, w, w + 1)
        candidates = [crop[..., r::kh, c::2] for r in range(kh) for c in (0, 1)]
        index = torch.arange(0, w // 2 * 2, 2, device=x.device).expand(out.shape).clone()
        if kh == 2:
            index += torch.arange(0, h // 2 * 2, 2, device=x.device)[:, None] * w
        missed = None
        for k, candidate in enumerate(candidates[:-1]):
            differs = candidate != out
            missed = differs if missed is None else missed.logical_and_(differs)
            index.add_(missed, alpha=offsets[k + 1] - offsets[k])
        ctx.dims, ctx.kernel = dims, [kh, 2]
        ctx.save_for_backward(x2, index)
        return out.squeeze(-2) if dims == 1 else out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor, None]:
        x2, index = ctx.saved_tensors
        if ctx.dims == 1:
            grad_out = grad_out.unsqueeze(-2)
        kernel = ctx.kernel
        grad = torch.ops.aten.max_pool2d_with_indices_backward(
            grad_out, x2, kernel, kernel, [0, 0], [1, 1], False, index
        )
        return (grad.squeeze(-2) if ctx.dims == 1 else grad), None


def _pools_faster(x: torch.Tensor) -> bool:
    """Whether :class:`_MaxPoolBy2` beats PyTorch's kernel on ``x``: in training (a gradient
    to compute: PyTorch's kernel then also writes the indices) of contiguous CPU tensors. Without
    a gradient PyTorch's own is as fast or faster (1-D: 0.6 against 2.8 ms for 32 x 8 x 2048),
    GPUs have their own kernels, and exports (``torch.onnx``, no gradient) see plain pooling."""
    return (
        x.requires_grad and torch.is_grad_enabled() and x.device.type == "cpu" and x.is_contiguous()
    )


class _PoolBy2:
    """``forward`` of the pooling layers below: :class:`_MaxPoolBy2` over the last
    ``pooled_dims`` axes where it is faster, PyTorch's pooling (the base class) elsewhere."""

    pooled_dims: int

    def __init__(self) -> None:
        super().__init__(2)  # the nn.MaxPool*d base: kernel 2 (and stride 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _pools_faster(x):
            return super().forward(x)
        return _MaxPoolBy2.apply(x, self.pooled_dims)


class MaxPool2dBy2(_PoolBy2, nn.MaxPool2d):
    """``nn.MaxPool2d(2)`` with the same values and gradients (:class:`_MaxPoolBy2`; NaN
    windows aside), faster in training on the CPU (elsewhere PyTorch's kernel:
    :func:`_pools_faster`).
    Why: PyTorch's CPU kernel took 20-24 % of the CPU time of a training step of the
    ``quick`` scalogram and spectrum CNNs (torch.profiler, 1 thread); this one made a
    ``quick`` spectrum CNN step 18 % cheaper (docs/history/benchmarks-log.md, "Where the quick
    preset's time goes"). A subclass, so that code that looks for ``nn.MaxPool2d`` (e.g.
    :func:`inference_copy`) still finds it."""

    pooled_dims = 2


class MaxPool1dBy2(_PoolBy2, nn.MaxPool1d):
    """``nn.MaxPool1d(2)`` computed as :class:`MaxPool2dBy2` (two strided views)."""

    pooled_dims = 1
