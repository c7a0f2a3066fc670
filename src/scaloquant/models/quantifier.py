"""``Quantifier``: FID -> metabolite amplitudes, with its input transform and normalisations inside.

A checkpoint of a :class:`Quantifier` reproduces everything between the raw complex FID and the
amplitudes on the basis scale, so a user needs nothing but the checkpoint to quantify.

Normalisation (why it is built this way)
----------------------------------------
Input: each FID is divided by its own scale ``s(x)``, the RMS of the samples the model sees
(``input_scale="per_sample"``, the default), and the output is multiplied by ``s(x)`` again::

    amplitudes(x) = s(x) * (mu + sigma * net(standardise(T(x / s(x)))))

``T`` is the scalogram or spectrum transform and ``standardise`` subtracts a fixed mean and
divides by a fixed std per input row (per channel for a spectrum; per channel and scale for a
scalogram, whose rows differ in magnitude by orders), measured on training inputs. Per-row
statistics trained the scalogram CNN faster than per-channel ones (``tiny`` preset, 256 steps:
validation RMSE 0.213 against 0.222). Since ``(k x) / s(k x) = x / s(x)`` for ``k > 0``, quantifying ``k x``
gives exactly ``k`` times the amplitudes of ``x`` (issue 5), whatever the network learned, and
signals of any overall scale (scanner units, another basis normalisation) reach the network at
the scale it was trained on. ``mu``/``sigma`` are the per-metabolite mean and standard deviation
of ``A / s(x)`` on the training set, so the network's outputs are of order one.
``input_scale="fixed"`` uses one constant ``s`` (the mean training RMS) instead: the classic
fixed normalisation, which keeps the absolute scale as information but loses the homogeneity.

Uncertainty (``uncertainty="gaussian"``)
----------------------------------------
A second linear head reads the same flattened CNN features as the amplitude head (detached) and
predicts the log-variance ``v`` of the normalised error ``z_true - z`` per metabolite; the
standard deviation on the basis scale is::

    sd(x) = s(x) * sigma * c * exp(v / 2)

with ``c`` a per-metabolite factor fitted after training on the validation set
(:meth:`Quantifier.calibrate`). ``sd(k x) = k sd(x)`` for the same reason as the amplitudes.
Why this method and how it is trained: :mod:`scaloquant.models.uncertainty`.

Inference
---------
:meth:`Quantifier.predict` runs the CNN through a cached copy with BatchNorm folded into the
convolutions and the channels-last layout (:func:`~scaloquant.models.cnn.inference_copy`), rebuilt
whenever the weights change, in batches sized to the processor's cache
(:meth:`Quantifier.default_batch_size`); ``forward`` (training) always uses the network itself.
Measured with ``benchmarks/bench_predict.py`` (``cpu``-preset scalogram CNN with uncertainty, 512
spectra, 2 threads, load average 1.0): 693 spectra/s with standard deviations at batch 16,
against 281/s for the plain eval-mode network at the same batch and 165/s at batch 64 (the
earlier default). The network alone went from 169 to 1130 spectra/s (batch 16; BatchNorm folded
221, channels-last 893, faster pooling 1029); the scalogram transform (~1 ms per spectrum) is now
about half of the time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from itertools import chain
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import nn

from .._config import dataclass_from_dict, whole_number
from ..errors import ConfigError, IncompatibleDataError, InvalidDataError
from ..presets import MODEL_KINDS, UNCERTAINTY_KINDS, ModelKind, Uncertainty
from ..scalogram import MorseScalogram, ScalogramConfig
from ..types import Acquisition
from .cnn import (
    DEFAULT_KERNEL_SIZE,
    DEFAULT_WIDTHS,
    ConvRegressor,
    Norm,
    ScalogramCNN,
    SpectrumCNN,
    inference_copy,
    kernel_tuple,
)
from .transforms import SpectrumTransform, spectrum_bins
from .uncertainty import calibration_factors

InputScale = Literal["per_sample", "fixed"]

# RMS below this is treated as an all-zero FID (its amplitudes come out as ~0, not NaN)
_TINY_SCALE = 1e-30
# predicted log-variances are clipped here before exp(), which would overflow float32 past ~88
_LOG_VAR_LIMIT = 60.0
#: On CPU, predict's batches hold at most this many bytes in the network's largest activation.
#: Why: activations that stay in the processor's last-level cache run faster: the ``cpu``-preset
#: scalogram CNN (1.5 MB per spectrum after its first convolution) ran 545-550 spectra/s at
#: batch 16 (24 MB), 365-390 at 24 and 345-380 at 32 (2 threads, 32 MB L3, load average 4).
CPU_ACTIVATION_BUDGET_BYTES = 24 * 2**20
#: Batch size of predict on GPUs, and the cap on CPU.
MAX_BATCH_SIZE = 256


class NormalisedOutput(NamedTuple):
    """What the network predicts for a batch, before de-normalisation.

    ``z`` ``(B, M)``: normalised amplitudes; ``log_var`` ``(B, M)``: log-variance of the
    normalised error (uncalibrated), or None without uncertainty; ``scale`` ``(B,)``: ``s(x)``.
    """

    z: torch.Tensor
    log_var: torch.Tensor | None
    scale: torch.Tensor


@dataclass(frozen=True)
class QuantifierConfig:
    """Everything needed to rebuild a :class:`Quantifier` (weights and buffers aside).

    Attributes
    ----------
    model : which network.
    metabolites : output names, in output order (the basis order).
    n_points, dwell_time_s, spectrometer_freq_mhz, ppm_reference, nucleus : the acquisition grid
        of the training signals; inputs must have ``n_points`` samples.
    widths, kernel_sizes, norm : network shape (see :class:`~scaloquant.models.cnn.ConvRegressor`).
    input_scale : ``"per_sample"`` or ``"fixed"`` (see the module docstring).
    scalogram : ``ScalogramConfig.to_dict()`` (scalogram model only).
    spectrum_n_points : samples whose FFT the spectrum model sees (None: all ``n_points``).
    spectrum_ppm_range : optional ``(low, high)`` ppm window of the spectrum model.
    uncertainty : ``"none"`` or ``"gaussian"`` (a log-variance head; see the module docstring).
        Checkpoints written before it existed load as ``"none"``.
    """

    model: ModelKind
    metabolites: tuple[str, ...]
    n_points: int
    dwell_time_s: float
    spectrometer_freq_mhz: float
    ppm_reference: float
    nucleus: str = "1H"
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    kernel_sizes: tuple[int, ...] = (DEFAULT_KERNEL_SIZE,) * len(DEFAULT_WIDTHS)
    norm: Norm = "batch"
    input_scale: InputScale = "per_sample"
    scalogram: Mapping[str, Any] | None = None
    spectrum_n_points: int | None = None
    spectrum_ppm_range: tuple[float, float] | None = None
    uncertainty: Uncertainty = "none"

    def __post_init__(self) -> None:
        if self.model not in MODEL_KINDS:
            raise ConfigError(
                f"unknown model {self.model!r}; choose one of {', '.join(MODEL_KINDS)}"
            )
        if self.uncertainty not in UNCERTAINTY_KINDS:
            raise ConfigError(
                f"uncertainty must be one of {', '.join(UNCERTAINTY_KINDS)}, "
                f"got {self.uncertainty!r}"
            )
        if self.input_scale not in ("per_sample", "fixed"):
            raise ConfigError(
                f"input_scale must be 'per_sample' or 'fixed', got {self.input_scale!r}"
            )
        object.__setattr__(self, "metabolites", tuple(str(m) for m in self.metabolites))
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "kernel_sizes", kernel_tuple(self.kernel_sizes, len(self.widths)))
        if self.spectrum_ppm_range is not None:
            object.__setattr__(
                self, "spectrum_ppm_range", tuple(float(p) for p in self.spectrum_ppm_range)
            )
        if self.model == "scalogram_cnn" and self.scalogram is None:
            raise ConfigError("a scalogram_cnn needs a scalogram configuration")
        if self.n_used > self.n_points:
            raise IncompatibleDataError(
                f"the model uses {self.n_used} samples but the signals have only {self.n_points}"
            )

    @property
    def acquisition(self) -> Acquisition:
        """The acquisition grid of the training signals."""
        return Acquisition.of(self)

    @property
    def n_used(self) -> int:
        """Number of leading FID samples the model looks at."""
        if self.model == "scalogram_cnn":
            return ScalogramConfig.from_dict(dict(self.scalogram)).n_points
        return self.n_points if self.spectrum_n_points is None else int(self.spectrum_n_points)

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-safe dict (tuples become lists)."""
        d = asdict(self)
        d["metabolites"] = list(self.metabolites)
        d["widths"] = list(self.widths)
        d["kernel_sizes"] = list(self.kernel_sizes)
        d["scalogram"] = None if self.scalogram is None else dict(self.scalogram)
        if self.spectrum_ppm_range is not None:
            d["spectrum_ppm_range"] = list(self.spectrum_ppm_range)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QuantifierConfig:
        return dataclass_from_dict(cls, d, "quantifier")


def _build_transform(config: QuantifierConfig) -> tuple[nn.Module, tuple[int, ...]]:
    if config.model == "scalogram_cnn":
        sc = ScalogramConfig.from_dict(dict(config.scalogram))
        return MorseScalogram(sc, dwell_time_s=config.dwell_time_s), tuple(sc.output_shape)
    n_used = config.n_used
    bins = spectrum_bins(
        n_used,
        config.dwell_time_s,
        config.spectrometer_freq_mhz,
        config.ppm_reference,
        config.spectrum_ppm_range,
    )
    transform = SpectrumTransform(n_used, bins)
    return transform, transform.output_shape


def all_finite(x: torch.Tensor) -> bool:
    """Whether every sample of ``x`` (real or complex) is finite.

    A NaN or infinite sample makes the sum non-finite, so a finite sum proves every sample
    finite, in one pass and no boolean tensor (4096 x 2048 complex64 samples: 8 ms against
    160 ms of ``torch.isfinite(x).all()``); a sum that overflowed on finite samples is checked
    sample by sample."""
    real = torch.view_as_real(x) if torch.is_complex(x) else x
    return bool(real.sum().isfinite()) or bool(torch.isfinite(real).all())


class Quantifier(nn.Module):
    """Transform + input normalisation + CNN + output de-normalisation.

    ``forward(fids)`` maps a complex tensor ``(B, n_points)`` to amplitudes ``(B, M)`` on the basis
    scale (differentiable; used in training). :meth:`predict` is the user-facing numpy version.
    The normalisation buffers are set by :meth:`fit_normalisation` from training data, the
    uncertainty calibration by :meth:`calibrate`; both are saved in the state dict.
    """

    def __init__(self, config: QuantifierConfig) -> None:
        super().__init__()
        self.config = config
        self.transform, input_shape = _build_transform(config)
        network_cls = ScalogramCNN if config.model == "scalogram_cnn" else SpectrumCNN
        self.network = network_cls(
            input_shape,
            widths=config.widths,
            kernel_sizes=config.kernel_sizes,
            n_outputs=len(config.metabolites),
            norm=config.norm,
        )
        n_met = len(config.metabolites)
        # one mean/std per input row: (C, 1) for a spectrum, (C, S, 1) for a scalogram
        row_shape = (*input_shape[:-1], 1)
        self.register_buffer("fixed_scale", torch.ones(()))
        self.register_buffer("feature_mean", torch.zeros(row_shape))
        self.register_buffer("feature_std", torch.ones(row_shape))
        self.register_buffer("target_mean", torch.zeros(n_met))
        self.register_buffer("target_std", torch.ones(n_met))
        if self.has_uncertainty:
            # created after the network and without drawing random numbers, so that the
            # network's initial weights, and with them the trained amplitudes, are the same as
            # without uncertainty
            # (zeros: a start at unit variance)
            head = nn.utils.skip_init(nn.Linear, self.network.n_features, n_met)
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
            self.log_var_head = head
            self.register_buffer("sd_calibration", torch.ones(n_met))
        # (weights key, fused copy of the network) for predict; a tuple, not a submodule, so
        # that it stays out of the state dict
        self._inference_cache: tuple[tuple, ConvRegressor] | None = None

    @property
    def has_uncertainty(self) -> bool:
        """Whether the model predicts a standard deviation per amplitude."""
        return self.config.uncertainty != "none"

    @property
    def metabolites(self) -> tuple[str, ...]:
        return self.config.metabolites

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one network input, ``(C, S, T)`` or ``(2, L)``."""
        return self.network.input_shape

    def sample_scale(self, fids: torch.Tensor) -> torch.Tensor:
        """Per-signal input scale ``s(x)``, shape ``(B,)``: the RMS of the samples the model sees
        (``per_sample``) or the stored constant (``fixed``)."""
        if self.config.input_scale == "fixed":
            return self.fixed_scale.expand(fids.shape[0])
        return self._per_sample_rms(fids)

    def _raw_features(self, fids: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.transform(fids / scale[:, None].to(fids.dtype))

    def features(
        self, fids: torch.Tensor, *, channels_last: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised network input ``(B, *input_shape)`` and the scale ``(B,)``.

        ``channels_last`` (inference only, 2-D inputs): computed in one pass straight into the
        memory layout of the fused network, as ``raw / std - mean / std`` (float32 rounding
        apart, the same values).
        """
        scale = self.sample_scale(fids)
        raw = self._raw_features(fids, scale)
        if not (channels_last and raw.ndim == 4):
            return (raw - self.feature_mean) / self.feature_std, scale
        feats = torch.empty_like(raw, memory_format=torch.channels_last)
        inv_std = self.feature_std.reciprocal()
        torch.addcmul(-self.feature_mean * inv_std, raw, inv_std, out=feats)
        return feats, scale

    def normalised_outputs(
        self,
        fids: torch.Tensor,
        *,
        network: ConvRegressor | None = None,
        features: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> NormalisedOutput:
        """Network outputs for complex FIDs ``(B, n_points)`` (``network``: another copy of the
        CNN, e.g. the fused inference copy; default :attr:`network`; ``features``: what
        :meth:`features` gives for ``fids`` with this network, computed beforehand, e.g. once
        for a fixed training set: :class:`scaloquant.train.data.SignalDataModule`)."""
        network = self.network if network is None else network
        if features is None:
            features = self.features(fids, channels_last=network is not self.network)
        feats, scale = features
        embedding = network.embed(feats)
        log_var = None
        if self.has_uncertainty:
            # detached: the variance head must not change the features the amplitudes are
            # computed from (see scaloquant.models.uncertainty)
            log_var = self.log_var_head(embedding.detach())
        return NormalisedOutput(network.head(embedding), log_var, scale)

    def amplitudes_from(self, z: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Amplitudes on the basis scale ``(B, M)`` from normalised outputs ``z`` ``(B, M)``."""
        return scale[:, None] * (self.target_mean + self.target_std * z)

    def normalised_targets(self, amplitudes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """True amplitudes ``(B, M)`` in the units of ``z`` (the inverse of
        :meth:`amplitudes_from`)."""
        return (amplitudes / scale[:, None] - self.target_mean) / self.target_std

    def sd_from(self, log_var: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Calibrated standard deviations on the basis scale ``(B, M)`` from log-variances."""
        sd_z = torch.exp(0.5 * log_var.clamp(-_LOG_VAR_LIMIT, _LOG_VAR_LIMIT))
        return scale[:, None] * self.target_std * self.sd_calibration * sd_z

    def forward(self, fids: torch.Tensor) -> torch.Tensor:
        out = self.normalised_outputs(fids)
        return self.amplitudes_from(out.z, out.scale)

    @torch.no_grad()
    def fit_normalisation(
        self, fids: torch.Tensor, amplitudes: torch.Tensor, *, batch_size: int = 64
    ) -> None:
        """Set the normalisation buffers from training signals.

        Parameters
        ----------
        fids : complex ``(n, n_points)`` training FIDs (a few hundred suffice for the input
            statistics; all are used).
        amplitudes : ``(n, M)`` their true amplitudes.
        """
        fids = torch.as_tensor(fids)
        amplitudes = torch.as_tensor(amplitudes, dtype=torch.float64)
        device = self.fixed_scale.device
        rms = torch.cat(
            [
                self._per_sample_rms(fids[i : i + batch_size].to(device))
                for i in range(0, len(fids), batch_size)
            ]
        ).double()
        if self.config.input_scale == "fixed":
            self.fixed_scale.fill_(float(rms.mean()))
            scale = torch.full_like(rms, float(rms.mean()))
        else:
            scale = rms
        # moments of every input row over signals and its last axis (time or frequency), float64
        total = total_sq = 0.0
        for i in range(0, len(fids), batch_size):
            chunk = fids[i : i + batch_size].to(device)
            raw = self._raw_features(chunk, scale[i : i + batch_size].to(device, torch.float32))
            raw = raw.double()
            total = total + raw.sum(dim=(0, -1))
            total_sq = total_sq + raw.square().sum(dim=(0, -1))
        count = len(fids) * self.input_shape[-1]
        mean = total / count
        std = (total_sq / count - mean.square()).clamp_min(0).sqrt()
        # rows with almost no signal (e.g. scales far above every metabolite frequency) would
        # otherwise be blown up to unit variance: floor their std at 1e-3 of the largest
        std = std.clamp_min(max(1e-3 * float(std.max()), torch.finfo(torch.float32).tiny))
        self.feature_mean.copy_(mean[..., None])
        self.feature_std.copy_(std[..., None])
        targets = amplitudes / scale[:, None]
        t_std = targets.std(0)
        self.target_mean.copy_(targets.mean(0))
        self.target_std.copy_(torch.where(t_std > 0, t_std, torch.ones_like(t_std)))

    def _per_sample_rms(self, fids: torch.Tensor) -> torch.Tensor:
        x = fids[..., : self.config.n_used]
        return (x.real.square() + x.imag.square()).mean(dim=-1).sqrt().clamp_min(_TINY_SCALE)

    def check_fids(
        self, fids: np.ndarray | torch.Tensor, dtype: torch.dtype = torch.complex64
    ) -> torch.Tensor:
        """Validate user FIDs and return them as a ``dtype`` tensor ``(B, n_points)``
        (complex64: the network's input; the physics-head models keep the data's complex128,
        :meth:`scaloquant.models.physics.PhysicsQuantifier.check_fids`); finite in ``dtype``."""
        if isinstance(fids, torch.Tensor):
            arr = fids
        else:
            # a copy: read-only arrays (a frozen FID's samples) would make torch warn
            arr = torch.from_numpy(np.array(fids))
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2:
            raise InvalidDataError(
                f"FIDs must have shape (n_signals, n_points), got {tuple(arr.shape)}"
            )
        if arr.shape[-1] != self.config.n_points:
            raise IncompatibleDataError(
                f"the model was trained on {self.config.n_points}-point FIDs but got "
                f"{arr.shape[-1]} points; resample the data to the training grid"
            )
        if not torch.is_complex(arr):
            raise InvalidDataError("FIDs must be complex; pass real + 1j * imaginary samples")
        arr = arr.to(dtype)
        if not all_finite(arr):
            raise InvalidDataError("FIDs contain NaN or Inf samples; check the data")
        return arr

    def _weights_key(self) -> tuple:
        # in-place updates (optimizer steps, load_state_dict) bump a tensor's version counter,
        # .to() and reassignment change its storage: either makes the cached copy stale
        return tuple(
            (t.data_ptr(), t._version, t.device, t.dtype)
            for t in chain(self.network.parameters(), self.network.buffers())
        )

    def inference_network(self) -> ConvRegressor:
        """The fused, channels-last copy of :attr:`network` used by :meth:`predict`, built on
        first use and rebuilt after the weights change (eval-mode semantics)."""
        key = self._weights_key()
        if self._inference_cache is None or self._inference_cache[0] != key:
            # built outside inference mode so that its weights are ordinary tensors
            with torch.inference_mode(False), torch.no_grad():
                fused = inference_copy(self.network)
            self._inference_cache = (key, fused)
        return self._inference_cache[1]

    def default_batch_size(self) -> int:
        """Batch size of :meth:`predict` when none is given: on CPU the most spectra whose
        largest activation fits :data:`CPU_ACTIVATION_BUDGET_BYTES` (16 for the ``cpu``-preset
        scalogram CNN), elsewhere :data:`MAX_BATCH_SIZE`."""
        if self.fixed_scale.device.type != "cpu":
            return MAX_BATCH_SIZE
        per_signal = self.network.largest_activation * 4  # float32
        return max(1, min(MAX_BATCH_SIZE, CPU_ACTIVATION_BUDGET_BYTES // per_signal))

    def predict(
        self, fids: np.ndarray | torch.Tensor, *, batch_size: int | None = None
    ) -> np.ndarray:
        """Amplitudes of complex FIDs, in batches on the model's device, in eval mode (the
        training/eval mode is restored afterwards); :meth:`predict_with_sd` also gives their
        standard deviations.

        Parameters
        ----------
        fids : complex ``(B, n_points)``, or one FID ``(n_points,)``.
        batch_size : FIDs per forward pass (None: :meth:`default_batch_size`).

        Returns
        -------
        amplitudes : ``(B, M)`` float64 on the basis scale, columns in :attr:`metabolites` order.
        """
        return self._predict(fids, batch_size, with_sd=False)[0]

    def predict_with_sd(
        self, fids: np.ndarray | torch.Tensor, *, batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict`'s amplitudes ``(B, M)`` and their calibrated standard deviations
        ``(B, M)`` float64 on the same scale (NaN for a model without uncertainty)."""
        amps, sd = self._predict(fids, batch_size, with_sd=True)
        return amps, (np.full(amps.shape, np.nan) if sd is None else sd)

    def _predict(
        self, fids: np.ndarray | torch.Tensor, batch_size: int | None, *, with_sd: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        # amplitudes (B, M) and, with with_sd and an uncertainty head, their SDs (B, M)
        arr = self.check_fids(fids)
        device = self.fixed_scale.device
        if batch_size is None:
            batch_size = self.default_batch_size()
        batch_size = whole_number("batch_size", batch_size, 1)
        was_training = self.training
        self.eval()
        amplitudes: list[torch.Tensor] = []
        sds: list[torch.Tensor] = []
        try:
            network = self.inference_network()
            with torch.inference_mode():
                for i in range(0, len(arr), batch_size):
                    out = self.normalised_outputs(
                        arr[i : i + batch_size].to(device), network=network
                    )
                    amplitudes.append(self.amplitudes_from(out.z, out.scale).double().cpu())
                    if with_sd and out.log_var is not None:
                        sds.append(self.sd_from(out.log_var, out.scale).double().cpu())
        finally:
            self.train(was_training)
        n_met = len(self.metabolites)
        amps = torch.cat(amplitudes).numpy() if amplitudes else np.zeros((0, n_met))
        return amps, (torch.cat(sds).numpy() if sds else None)

    def calibrate(
        self,
        fids: np.ndarray | torch.Tensor,
        amplitudes: np.ndarray,
        *,
        level: float = 0.95,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Fit the per-metabolite factor of the standard deviations on held-out signals so that
        the central ``level`` interval covers the truth of exactly ``level`` of them
        (:func:`~scaloquant.models.uncertainty.calibration_factors`); returns the factors ``(M,)``.

        Parameters
        ----------
        fids : complex ``(n, n_points)`` validation FIDs (not used in training).
        amplitudes : ``(n, M)`` their true amplitudes.
        """
        if not self.has_uncertainty:
            raise ConfigError("this model has no uncertainty head to calibrate")
        self.sd_calibration.fill_(1.0)
        mean, sd = self.predict_with_sd(fids, batch_size=batch_size)
        factors = calibration_factors(np.asarray(amplitudes, dtype=np.float64), mean, sd, level)
        self.sd_calibration.copy_(torch.from_numpy(factors))
        return factors
