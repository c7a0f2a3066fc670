"""ONNX export of a :class:`~scaloquant.models.Quantifier`: the route to other runtimes and to a
plugin of another tool (the paper's jMRUI plugin would need a Java runtime for such a file).

What the graph holds
--------------------
* Spectrum CNN: everything from the FID to the amplitudes. Input ``fid`` float32
  ``(B, 2, n_points)`` (real and imaginary parts, internal orientation); the per-signal scale
  ``s(x)`` (RMS of the samples the model sees), the spectrum ``fftshift(fft(x / s(x)))`` (unitary,
  written as two real matrix products, since ONNX has no complex tensors), its ppm window, the
  standardisation, the CNN and the de-normalisation are all inside.
* Scalogram CNN: the Morse transform is an FFT filter bank whose matrix form would be hundreds of
  MB, so the graph starts after it. Inputs ``scalogram`` float32 ``(B, C, S, T)`` =
  ``MorseScalogram(x / s(x))`` (the transform of :mod:`scaloquant.scalogram` with the checkpoint's
  scalogram configuration, recorded in the sidecar) and ``scale`` float32 ``(B,)`` = ``s(x)``.
Outputs: ``amplitudes`` ``(B, M)`` on the basis scale and, for a model with uncertainty, ``sd``
``(B, M)``, calibrated, in the metabolite order of the sidecar.

The sidecar JSON (:func:`export_description`) documents the pre- and post-processing: the
acquisition the model was trained for, the orientation of the samples, the scale, the
transform's configuration, and what the outputs mean.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..errors import ConfigError
from .quantifier import _LOG_VAR_LIMIT, _TINY_SCALE, Quantifier

#: ONNX opset of the export (ONNX Runtime >= 1.16 runs it): 18, the oldest that torch's
#: exporter (torch 2.13, ``dynamo=True``) writes; asked for 17, it wrote 18 all the same after a
#: failed down-conversion, whose traceback it printed, while the sidecar said 17.
ONNX_OPSET = 18


def dft_matrices(n_points: int, bins: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Real and imaginary parts ``(n_points, stop - start)`` of the unitary DFT matrix whose
    column ``j`` gives bin ``start + j`` of ``fftshift(fft(x, norm="ortho"))``."""
    n = np.arange(n_points)
    k = np.fft.fftshift(np.arange(n_points))[bins[0] : bins[1]]  # fft index of each bin
    w = np.exp(-2j * np.pi * np.outer(n, k) / n_points) / np.sqrt(n_points)
    return w.real.astype(np.float32), w.imag.astype(np.float32)


class _Head(nn.Module):
    """Standardisation, CNN and de-normalisation of a quantifier, on real tensors."""

    def __init__(self, quantifier: Quantifier) -> None:
        super().__init__()
        self.q = quantifier

    def outputs(self, raw: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, ...]:
        q = self.q
        feats = (raw - q.feature_mean) / q.feature_std
        embedding = q.network.embed(feats)
        amplitudes = scale[:, None] * (q.target_mean + q.target_std * q.network.head(embedding))
        if not q.has_uncertainty:
            return (amplitudes,)
        log_var = q.log_var_head(embedding).clamp(-_LOG_VAR_LIMIT, _LOG_VAR_LIMIT)
        sd = scale[:, None] * q.target_std * q.sd_calibration * torch.exp(0.5 * log_var)
        return amplitudes, sd


class _SpectrumGraph(_Head):
    def __init__(self, quantifier: Quantifier) -> None:
        super().__init__(quantifier)
        transform = quantifier.transform
        real, imag = dft_matrices(transform.n_points, transform.bins)
        self.register_buffer("dft_real", torch.from_numpy(real))
        self.register_buffer("dft_imag", torch.from_numpy(imag))
        self.n_used = transform.n_points

    def forward(self, fid: torch.Tensor) -> tuple[torch.Tensor, ...]:
        re, im = fid[:, 0, : self.n_used], fid[:, 1, : self.n_used]
        if self.q.config.input_scale == "fixed":
            scale = self.q.fixed_scale.expand(fid.shape[0])
        else:
            scale = (re * re + im * im).mean(dim=-1).sqrt().clamp_min(_TINY_SCALE)
        re, im = re / scale[:, None], im / scale[:, None]
        spec_re = re @ self.dft_real - im @ self.dft_imag
        spec_im = re @ self.dft_imag + im @ self.dft_real
        return self.outputs(torch.stack((spec_re, spec_im), dim=1), scale)


class _ScalogramGraph(_Head):
    def forward(self, scalogram: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.outputs(scalogram, scale)


def export_description(quantifier: Quantifier) -> dict[str, Any]:
    """The sidecar JSON of an export: inputs, pre-processing, outputs (see the module docstring)."""
    config = quantifier.config
    spectrum = config.model == "spectrum_cnn"
    scale_rule = (
        f"the constant {float(quantifier.fixed_scale):.9g}"
        if config.input_scale == "fixed"
        else f"sqrt(mean(|fid[:{config.n_used}]|^2)) per signal (at least {_TINY_SCALE:g})"
    )
    outputs = ["amplitudes"] + (["sd"] if quantifier.has_uncertainty else [])
    return {
        "format": "scaloquant-onnx",
        "scaloquant_version": __version__,
        "model": config.model,
        "metabolites": list(config.metabolites),
        "acquisition": {
            "n_points": config.n_points,
            "dwell_time_s": config.dwell_time_s,
            "spectrometer_freq_mhz": config.spectrometer_freq_mhz,
            "ppm_reference": config.ppm_reference,
            "nucleus": config.nucleus,
        },
        "orientation": (
            "samples in scaloquant's internal orientation (FSL-MRS's internal one: with "
            "fftshift(fft(fid)) ppm = ppm_reference + f/MHz increases with the index); NIfTI-MRS "
            "files on disk and LCModel .RAW files store the complex conjugate"
        ),
        "inputs": (
            {"fid": "float32 (B, 2, n_points): real and imaginary parts of the FIDs"}
            if spectrum
            else {
                "scalogram": (
                    "float32 (B, C, S, T): MorseScalogram(config=scalogram)(fid / scale), "
                    "unstandardised (scaloquant.scalogram.MorseScalogram)"
                ),
                "scale": "float32 (B,): the per-signal scale below",
            }
        ),
        "scale": scale_rule,
        "transform_in_graph": spectrum,
        "spectrum": (
            {
                "samples_used": config.n_used,
                "bins": list(quantifier.transform.bins),
                "definition": "fftshift(fft(fid[:samples_used] / scale, norm='ortho'))[bins]",
            }
            if spectrum
            else None
        ),
        "scalogram": None if spectrum else dict(config.scalogram),
        "outputs": {
            "amplitudes": "float32 (B, M): amplitudes on the basis scale, metabolites order",
            **(
                {"sd": "float32 (B, M): calibrated standard deviations of the amplitudes"}
                if quantifier.has_uncertainty
                else {}
            ),
        },
        "output_names": outputs,
        "opset": ONNX_OPSET,
    }


def export_onnx(
    quantifier: Quantifier, path: str | os.PathLike, *, overwrite: bool = False
) -> tuple[Path, Path]:
    """Write ``path`` (ONNX) and ``path`` with suffix ``.json`` (the sidecar), atomically.

    Returns both paths. The batch dimension is dynamic.
    """
    from ..io.atomic import atomic_path, check_writable, write_text_atomic

    try:  # the exporter needs both; they are an optional extra
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise ConfigError(
            "ONNX export needs the onnx and onnxscript packages: pip install 'scaloquant[onnx]'"
        ) from None

    from .physics_config import PHYSICS_KINDS

    if quantifier.config.model in PHYSICS_KINDS:
        # its amplitudes come from a least-squares solve with the basis and the fit's iterations
        # after the network: the graph would hold the network's lineshape parameters alone
        raise ConfigError(
            f"export writes the regression CNNs (scalogram_cnn, spectrum_cnn); "
            f"{quantifier.config.model} is a physics-head model, whose amplitudes are solved "
            "with the basis after the network: run it with scaloquant quantify --model"
        )
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise ConfigError(f"the ONNX output {path} must end in .onnx")
    sidecar = path.with_suffix(".json")
    # before the graph is written; the file asked for named first (it said 'm.json already
    # exists' of an m.onnx exported before)
    check_writable(path, overwrite=overwrite)
    check_writable(sidecar, overwrite=overwrite)
    quantifier = quantifier.cpu().eval()
    description = export_description(quantifier)
    if quantifier.config.model == "spectrum_cnn":
        graph: nn.Module = _SpectrumGraph(quantifier)
        example: tuple[torch.Tensor, ...] = (torch.zeros(2, 2, quantifier.config.n_points),)
        input_names = ["fid"]
    else:
        graph = _ScalogramGraph(quantifier)
        example = (torch.zeros(2, *quantifier.input_shape), torch.ones(2))
        input_names = ["scalogram", "scale"]
    graph.eval()
    dynamic = {name: {0: "batch"} for name in (*input_names, *description["output_names"])}
    with atomic_path(path, overwrite=overwrite) as tmp, torch.no_grad(), _exporter_quiet():
        torch.onnx.export(
            graph,
            example,
            str(tmp),
            input_names=input_names,
            output_names=description["output_names"],
            dynamic_axes=dynamic,
            opset_version=ONNX_OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    write_text_atomic(sidecar, json.dumps(description, indent=2) + "\n", overwrite=overwrite)
    return path, sidecar


@contextlib.contextmanager
def _exporter_quiet() -> Iterator[None]:
    """The exporter's own chatter off for the export (a terminal read a dozen lines of it:
    'dynamic_axes is not recommended', 'torchvision is not installed. Skipping
    torchvision::nms', the pytree deprecation), none of which is about the user's model."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)
