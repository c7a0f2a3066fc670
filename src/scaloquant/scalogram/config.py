"""The scalogram configuration: everything that decides a scalogram, in one frozen, JSON-safe record.

A trained model's checkpoint stores ``ScalogramConfig.to_dict()``; ``from_dict`` rebuilds the exact
transform. Rows are ordered by increasing scale, i.e. row 0 is the highest frequency, as in MATLAB's
``cwt``; columns are time samples ``0, D, 2D, ...`` of the first ``n_points`` FID points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

import numpy as np

from .._config import dataclass_from_dict, positive_number, true_or_false, whole_number
from ..errors import ConfigError
from ..presets import SCALOGRAM_PRESETS, ChannelMode, ScalogramPreset
from . import morse

Padding = Literal["reflection", "zeros", "periodic"]
Normalisation = Literal["none", "max"]
RealDType = Literal["float32", "float64"]

#: MATLAB's default number of voices per octave, used when neither a count nor voices are given.
DEFAULT_VOICES_PER_OCTAVE = 10

#: What each of :data:`scaloquant.presets.SCALOGRAM_PRESETS` sets (the names live there, so
#: that ``scaloquant scalogram``'s parser lists them without numpy).
_PRESETS: dict[str, dict[str, Any]] = {
    # The paper: MATLAB cwt, Morse (3, 60), first 1536 of 2048 points, 340 x 1536. No voices-per-
    # octave value gives 340 rows for 1536 points (morse-cwt.md), so the 340 scales are log-spaced
    # over MATLAB's default span for N = 1536 (0.68999 .. 139.617).
    "paper": {"n_points": 1536, "n_scales": 340},
    # Reduced size for training on 2 CPU cores: the same span with 128 scales (16.6 per octave
    # instead of 44) and every 4th time column (0.25 ms -> 1 ms at 4 kHz, still 384 columns over
    # the 384 ms): 10.6x fewer outputs than `paper` and about 10x faster to compute (measured by
    # benchmarks/bench_scalogram.py --variants; 96 scales would be 1.2x and 64 scales 1.5x faster
    # again). Its accuracy cost is measured in training (issue 4). Change the numbers here.
    "cpu": {"n_points": 1536, "n_scales": 128, "decimation": 4},
}


@dataclass(frozen=True, kw_only=True)
class ScalogramConfig:
    """What a Morse scalogram is made of. All arguments are keyword-only.

    Parameters
    ----------
    n_points : FID samples used: the FIRST ``n_points`` of each FID (the paper: 1536 of 2048).
    n_scales : number of rows. With ``voices_per_octave`` unset, that many scales are log-spaced
        over the span (both ends included). With ``voices_per_octave`` set it is derived (MATLAB's
        rule) and, if given too, must agree. After construction it always holds the count.
    voices_per_octave : MATLAB's rule: scales ``s0 * 2**(j / nv)`` from the smallest scale up to
        the largest. Used (as 10, MATLAB's default) when neither this nor ``n_scales`` is given.
    freq_min_hz, freq_max_hz : explicit span as centre frequencies in Hz (both or neither; needs
        the dwell time when the filters are built). Default: MATLAB's span for ``n_points``.
    gamma, beta : Morse wavelet parameters (MATLAB's default (3, 60) is gamma 3, beta 20).
    decimation : keep every ``decimation``-th time column, computed exactly (not by discarding).
    padding : boundary handling. ``reflection`` (MATLAB's default) mirrors ``n_points // 2``
        samples at each end, edge sample repeated; ``zeros`` pads the same lengths with zeros;
        ``periodic`` does not pad (circular).
    channels : ``abs_re_im`` = ``|W[Re s]|, |W[Im s]|`` (the paper's two images); ``pos_neg`` =
        moduli of MATLAB's two pages for complex input, the positive- and negative-frequency
        transforms of ``s / 2``; ``complex`` = ``Re W[Re s], Im W[Re s], Re W[Im s], Im W[Im s]``.
    normalise : ``max`` divides each signal's scalogram (all channels) by its largest magnitude.
    log : replace magnitudes ``m`` by ``ln(m + log_epsilon)`` (after ``normalise``); magnitude
        channel modes only.
    dtype : real dtype of the output and of the computation.
    """

    n_points: int = 1536
    n_scales: int | None = None
    voices_per_octave: int | None = None
    freq_min_hz: float | None = None
    freq_max_hz: float | None = None
    gamma: float = morse.DEFAULT_GAMMA
    beta: float = morse.DEFAULT_BETA
    decimation: int = 1
    padding: Padding = "reflection"
    channels: ChannelMode = "abs_re_im"
    normalise: Normalisation = "none"
    log: bool = False
    log_epsilon: float = 1e-6
    dtype: RealDType = "float32"

    def __post_init__(self) -> None:
        _check_choice("padding", self.padding, Padding)
        _check_choice("channels", self.channels, ChannelMode)
        _check_choice("normalise", self.normalise, Normalisation)
        _check_choice("dtype", self.dtype, RealDType)
        object.__setattr__(self, "n_points", whole_number("n_points", self.n_points, 2))
        object.__setattr__(self, "decimation", whole_number("decimation", self.decimation, 1))
        for name in ("gamma", "beta", "log_epsilon"):
            object.__setattr__(self, name, positive_number(name, getattr(self, name)))
        true_or_false("log", self.log)
        if self.log and self.channels == "complex":
            raise ConfigError(
                "log needs magnitudes; use channels abs_re_im or pos_neg, or log=false"
            )
        self._check_geometry()
        self._check_frequency_limits()
        object.__setattr__(self, "n_scales", self._resolve_n_scales())

    def _check_geometry(self) -> None:
        d = self.decimation
        if self.n_points % d:
            raise ConfigError(
                f"decimation {d} does not divide n_points {self.n_points}; choose a divisor"
            )
        if self.padded_length % d:
            raise ConfigError(
                f"decimation {d} does not divide the padded length {self.padded_length} "
                f"({self.padding} padding of {self.n_points} points); use an even n_points"
            )

    def _check_frequency_limits(self) -> None:
        limits = (self.freq_min_hz, self.freq_max_hz)
        if limits.count(None) == 1:
            raise ConfigError("give both freq_min_hz and freq_max_hz, or neither")
        if limits[0] is None:
            return
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in limits):
            raise ConfigError(f"frequency limits must be numbers in Hz, got {limits}")
        lo, hi = (float(v) for v in limits)
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
            raise ConfigError(f"need 0 < freq_min_hz < freq_max_hz, got {lo} and {hi}")
        object.__setattr__(self, "freq_min_hz", lo)
        object.__setattr__(self, "freq_max_hz", hi)

    def _resolve_n_scales(self) -> int:
        nv, given = self.voices_per_octave, self.n_scales
        if nv is None and given is None:
            nv = DEFAULT_VOICES_PER_OCTAVE
            object.__setattr__(self, "voices_per_octave", nv)
        if nv is None:
            return whole_number("n_scales", given, 1)
        nv = whole_number("voices_per_octave", nv, 1)
        if nv > morse.MAX_VOICES_PER_OCTAVE:
            raise ConfigError(
                f"voices_per_octave must be at most {morse.MAX_VOICES_PER_OCTAVE}, got {nv}"
            )
        object.__setattr__(self, "voices_per_octave", nv)
        derived = len(_relative_scales(self))
        if given is not None and given != derived:
            raise ConfigError(
                f"n_scales {given} disagrees with voices_per_octave {nv}, which gives {derived} "
                "scales; give only one of them"
            )
        return derived

    # -- derived sizes -----------------------------------------------------------------------
    @property
    def n_channels(self) -> int:
        return 4 if self.channels == "complex" else 2

    @property
    def n_time(self) -> int:
        return self.n_points // self.decimation

    @property
    def output_shape(self) -> tuple[int, int, int]:
        """``(channels, scales, time)`` of one FID's scalogram."""
        return (self.n_channels, self.n_scales, self.n_time)

    @property
    def pad_before(self) -> int:
        """Samples added before the signal; also the offset of the kept region in the padding."""
        return 0 if self.padding == "periodic" else self.n_points // 2

    @property
    def padded_length(self) -> int:
        """Transform length: ``2 * (n_points // 2) + n_points`` (MATLAB's 2N) unless periodic."""
        return self.n_points + 2 * self.pad_before

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict of every field (``n_scales`` resolved); see :meth:`from_dict`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScalogramConfig:
        """Rebuild a config from :meth:`to_dict` output; unknown keys are an error."""
        return dataclass_from_dict(cls, data, "scalogram")

    @classmethod
    def preset(cls, name: ScalogramPreset, **overrides: Any) -> ScalogramConfig:
        """A named preset (``paper``: 2 x 340 x 1536; ``cpu``: 2 x 128 x 384), optionally changed."""
        if name not in _PRESETS:
            raise ConfigError(
                f"unknown scalogram preset {name!r}; choose from {', '.join(_PRESETS)}"
            )
        return cls(**{**_PRESETS[name], **overrides})


def preset_names() -> tuple[str, ...]:
    return SCALOGRAM_PRESETS


def scales(config: ScalogramConfig, dwell_time_s: float | None = None) -> np.ndarray:
    """The scale of every row, float64, increasing (row 0 = smallest scale = highest frequency).

    ``dwell_time_s`` is needed only when the config gives its span in Hz; that span is then
    checked against MATLAB's usable band for ``n_points`` (a ``ConfigError`` outside it).

    Returns
    -------
    ndarray, shape ``(config.n_scales,)``.
    """
    g, b = config.gamma, config.beta
    smallest, largest = morse.default_scale_span(config.n_points, g, b)
    if config.freq_min_hz is not None:
        if dwell_time_s is None or not dwell_time_s > 0:
            raise ConfigError(
                "this scalogram config gives its span in Hz; pass the FIDs' dwell_time_s"
            )
        band_hz = morse.scale_to_frequency_cycles(np.array([largest, smallest]), g, b)
        band_hz /= dwell_time_s
        if not (
            band_hz[0] * (1 - 1e-9) <= config.freq_min_hz
            and config.freq_max_hz <= band_hz[1] * (1 + 1e-9)
        ):
            raise ConfigError(
                f"frequency span {config.freq_min_hz:g}-{config.freq_max_hz:g} Hz is outside the "
                f"usable band {band_hz[0]:.6g}-{band_hz[1]:.6g} Hz for {config.n_points} points "
                f"at dwell {dwell_time_s:g} s; narrow it"
            )
        smallest = float(morse.frequency_cycles_to_scale(config.freq_max_hz * dwell_time_s, g, b))
    return smallest * _relative_scales(config)


def _relative_scales(config: ScalogramConfig) -> np.ndarray:
    """Scales divided by the smallest one. Depends only on the span's ratio, so the row count is
    known without a dwell time even when the span is given in Hz."""
    if config.freq_min_hz is not None:
        ratio = config.freq_max_hz / config.freq_min_hz
    else:
        smallest, largest = morse.default_scale_span(config.n_points, config.gamma, config.beta)
        ratio = largest / smallest
    if config.voices_per_octave is not None:
        return morse.octave_scales(1.0, ratio, config.voices_per_octave)
    return morse.log_spaced_scales(1.0, ratio, config.n_scales)


def _check_choice(name: str, value: Any, options: Any) -> None:
    allowed = get_args(options)
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
