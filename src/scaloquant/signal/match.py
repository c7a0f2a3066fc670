"""Whether data can go to a model (or be fitted with a basis set), and the safe conversions.

This is the one place that compares an acquisition with the grid a trained model or a basis set
expects. :func:`match_acquisition` converts where a conversion is exact or safe and refuses the
rest with one line that says what differs and what to do; :func:`require_same_grid` is the
strict check for callers that want no conversion at all.

Rules, and why
--------------
The checks come first (1, 2, the window of 4, 6), then the conversions in the order 3, 2, 4, 5.

1. **Nucleus** differs: refused, even with ``force``. Chemical shifts, coupling constants and
   the whole basis belong to one nucleus; nothing converts one into another.
2. **Spectrometer frequency** (``F`` data, ``F0`` target, relative difference
   ``|F - F0| / F0``):

   * at most :data:`FREQUENCY_RTOL` (0.1 %): the same scanner up to rounding in the header; the
     data are labelled with ``F0``. This moves a peak 2.65 ppm from the reference (NAA at 3 T)
     by at most 0.33 Hz, far below a linewidth.
   * up to :data:`SAME_FIELD_RTOL` (5 %): the same nominal field on another vendor's scanner
     (123.2 MHz vs 127.8 MHz at "3 T"). Refused unless ``force``; with it, a ppm-preserving
     conversion: the dwell time is re-labelled ``dwell * F / F0`` so that every frequency in Hz
     is multiplied by ``F0 / F`` and every singlet lands at its own ppm on the target's scale,
     then the FID is resampled to the target's dwell time (rule 4). Linewidths keep their ppm
     width. What it cannot do: J-coupled multiplets are spaced by ``J`` in Hz, not in ppm, and
     their strong-coupling patterns depend on ``F``, so multiplets differ slightly from the
     model's; this is reported in ``warnings``.
   * more than 5 % (7 T data, 3 T model): refused always. No safe conversion exists (the
     spectral pattern of every coupled metabolite changes); train or fit with a basis set
     simulated for that field.
3. **ppm reference** (the chemical shift of 0 Hz) differs by ``d`` ppm: the FID is multiplied by
   ``exp(2 pi i (d * F) t)``, an exact frequency shift by ``d * F`` Hz, so every peak keeps its
   ppm on the target's scale. Automatic, reported.
4. **Dwell time** (spectral width) differs: Fourier resampling, refused unless ``force`` because
   the model never saw filtered (band-limited) or interpolated data. The FID's band-limited
   trigonometric interpolant ``x(t) = (1/N) sum_k X_k exp(2 pi i f_k t)`` (``X = fft(x)``,
   ``f_k`` the centred DFT frequencies) is restricted to the target band
   ``-1/(2 dwell0) <= f < 1/(2 dwell0)`` (cropping the centred spectrum when decimating,
   zero-padding it when interpolating) and evaluated at ``t = m * dwell0`` over the same
   duration. The ``1/N`` keeps FID amplitudes (the first point is the spectral area). For a
   whole-number ratio of durations this is "crop or zero-pad the centred spectrum and inverse
   FFT"; for any ratio it is evaluated exactly with the chirp z-transform (Rabiner, Schafer &
   Rader, *Bell Syst. Tech. J.* 48:1249, 1969; :func:`chirp_z`). Two details of
   :func:`resample_fid` keep the FID a FID: it is zero-extended (no wrap of its end onto its
   start) and its first point is halved before and doubled after (the DFT's constant
   ``x[0]/2`` offset would otherwise be cut with the band). Known limit: a FID jumps from 0 at
   ``t = 0``, so samples interpolated between old ones near ``t = 0`` carry a small Gibbs
   ripple.
   Refused even with ``force`` when the resulting spectrum would not hold the ppm window the
   model or basis needs (:data:`WINDOW_PPM_1H`, 0.2-4.2 ppm, for 1H; no window is imposed on
   other nuclei): no conversion invents the missing band. The same check guards rule 3.
5. **Number of points** differs (at the target's dwell time): truncation or zero-filling at the
   end of the FID. Automatic, reported.
6. **Sequence and echo time**, compared only when both the file and the target state them:
   an echo time differing by more than :data:`ECHO_TIME_ATOL_S` (0.5 ms) or a different
   sequence family (PRESS, STEAM, sLASER, LASER, SPECIAL, MEGA, HERMES, HERCULES; vendor names
   such as Siemens ``svs_se``/``svs_st`` and GE ``PROBE-P``/``PROBE-S`` are recognised,
   case-insensitively) changes J-evolution and relaxation weighting, which biases every
   amplitude: refused unless ``force``, with it a warning. A sequence name that is not
   recognised and differs from the target's is not refused (vendors name sequences freely); it
   is reported in ``warnings`` so the user can check.

Everything works on the last axis: a batch ``(x, y, z, ..., n_points)`` keeps its leading shape.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from ..errors import IncompatibleDataError, NeedsOption, Option
from . import axes
from .axes import WINDOW_PPM_1H
from .grid import Acquisition

#: Relative spectrometer-frequency difference taken as the same scanner (see rule 2).
FREQUENCY_RTOL = 1e-3
#: Relative spectrometer-frequency difference still taken as the same nominal field (rule 2):
#: vendors put "3 T" between 123.2 MHz and 127.8 MHz (3.7 %).
SAME_FIELD_RTOL = 0.05
#: Relative dwell-time difference below which two dwell times are the same (header rounding).
DWELL_RTOL = 1e-6
#: ppm-reference difference below which no shift is applied (1e-6 ppm is 1e-4 Hz at 3 T).
PPM_REFERENCE_ATOL = 1e-6
#: Echo-time tolerance (rule 6): headers round TE to 0.1-0.5 ms.
ECHO_TIME_ATOL_S = 0.5e-3

#: Sequence families, first match wins (MEGA-PRESS holds "press", sLASER holds "laser"): a
#: pattern searched in the lower-case name with everything but letters and digits removed.
_SEQUENCE_FAMILIES = (
    ("MEGA", r"mega"),
    ("HERMES", r"hermes"),
    ("HERCULES", r"hercules"),
    ("SPECIAL", r"special"),
    ("sLASER", r"slaser|semilaser"),
    ("LASER", r"laser"),
    ("STEAM", r"steam|svsst|probes"),
    ("PRESS", r"press|svsse|probep"),
)


class OnGrid(Protocol):
    """What :func:`match_acquisition` needs of the data: :class:`scaloquant.types.FID` (which
    this module, below ``types``, does not import) or any frozen dataclass with these
    attributes and the fields ``samples``, ``dwell_time_s``, ``spectrometer_freq_mhz``,
    ``ppm_reference`` and ``provenance`` (set with :func:`dataclasses.replace`)."""

    samples: np.ndarray
    provenance: Mapping[str, Any]

    @property
    def acquisition(self) -> Acquisition: ...


Data = TypeVar("Data", bound=OnGrid)
#: A frozen dataclass with the grid fields: a FID or a basis set.
Gridded = TypeVar("Gridded")


@dataclass(frozen=True)
class Matched(Generic[Data]):
    """Data on exactly the target grid, and what was done to put them there.

    Attributes
    ----------
    fid : the converted FID, samples ``(..., target.n_points)`` with the input's batch shape,
        the target's dwell time, spectrometer frequency and ppm reference (the input itself when
        nothing differed).
    conversions : one human sentence per conversion applied, in order.
    warnings : what the user should know about the result (forced conversions, sequence or echo
        time differences accepted with ``force``, unrecognised sequence names).
    """

    fid: Data
    conversions: tuple[str, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class _Refusal:
    """One difference that ``force`` may accept: what differs and what the user can do."""

    what: str
    advice: tuple[str | Option, ...]


def match_acquisition(
    fid: Data,
    target: Acquisition,
    *,
    sequence: str | None = None,
    echo_time_s: float | None = None,
    force: bool = False,
    target_what: str = "the model",
) -> Matched[Data]:
    """Put ``fid`` on the ``target`` grid with the safe conversions of the module docstring.

    Parameters
    ----------
    fid : data (a :class:`scaloquant.types.FID`, see :class:`OnGrid`), samples
        ``(..., n_points)``; its sequence and echo time are read with :func:`stated_sequence`.
    target : the grid of the model (or basis set).
    sequence, echo_time_s : the target's sequence name and echo time in s, when known (from
        :func:`basis_sequence` of the model's basis metadata).
    force : accept the conversions and differences that are refused by default (another
        vendor's frequency at the same field, another dwell time, another sequence or TE).
    target_what : how error messages name the target, e.g. ``"the basis set"``.

    Returns
    -------
    :class:`Matched` with the FID on the target grid.

    Raises
    ------
    IncompatibleDataError : a difference no conversion can bridge; :class:`NeedsOption` (one
        of them) when an option would accept or correct it (``force``, a corrected header
        value): the one-line message names the values, and the options as
        :class:`~scaloquant.errors.Option` parts that the CLI words as its flags.
    """
    source = _describe_source(fid)
    acq = fid.acquisition
    freq_rel = require_same_field(acq, target, source=source, target_what=target_what)
    _require_window(acq, target, source, target_what)

    refusals: list[_Refusal] = []
    warnings: list[str] = []
    if freq_rel > FREQUENCY_RTOL:
        refusals.append(
            _Refusal(
                f"acquired at {_mhz(acq)} and {target_what} is for {_mhz(target)} "
                f"({100 * freq_rel:.1f}% apart: the same nominal field, another vendor's frequency)",
                (
                    "pass ",
                    Option("force"),
                    " to convert keeping every chemical shift (J-coupled multiplets then differ "
                    "slightly), or ",
                    Option("override_freq"),
                    " if the header is wrong",
                ),
            )
        )
        warnings.append(
            f"converted from {acq.spectrometer_freq_mhz:g} MHz to "
            f"{target.spectrometer_freq_mhz:g} MHz: singlets sit at their ppm, but J-coupled "
            f"multiplets keep their Hz spacing and differ slightly from {target_what}'s"
        )
    if not _same_dwell(acq.dwell_time_s, target.dwell_time_s):
        refusals.append(
            _Refusal(
                f"dwell time {_dwell(acq)} and {target_what}'s {_dwell(target)}",
                (
                    "matching them needs Fourier resampling (band-limiting or interpolating the "
                    f"FID), which {target_what} never saw: pass ",
                    Option("force"),
                    " to resample anyway, or ",
                    Option("override_dwell"),
                    " if the header is wrong",
                ),
            )
        )
        warnings.append(
            f"Fourier-resampled from {1 / acq.dwell_time_s:g} Hz to "
            f"{1 / target.dwell_time_s:g} Hz spectral width: {target_what} never saw resampled "
            "data; check the fit figures"
        )
    sequence_refusals, sequence_warnings = _compare_sequences(
        stated_sequence(fid), (sequence, echo_time_s), target_what
    )
    refusals += sequence_refusals
    warnings += sequence_warnings
    if refusals and not force:
        first, others = refusals[0], refusals[1:]
        also = f" (it also differs: {'; '.join(r.what for r in others)})" if others else ""
        raise NeedsOption(f"{source}: {first.what}; ", *first.advice, also)

    if acq == target:
        return Matched(fid, (), tuple(warnings))
    samples, conversions = _convert(fid.samples, acq, target)
    provenance = dict(fid.provenance)
    if conversions:
        provenance["conversions"] = [*provenance.get("conversions", ()), *conversions]
    # Values within tolerance (header rounding) take the target's exact value too.
    matched = relabelled(fid, target, provenance, samples=samples)
    return Matched(matched, tuple(conversions), tuple(warnings))


def require_same_field(
    acq: Acquisition,
    target: Acquisition,
    *,
    source: str,
    target_what: str,
    remedy: str = "train a model (or fit) with a basis set",
) -> float:
    """Rules 1 and 2's refusals, whatever ``force`` says: another nucleus, or a spectrometer
    frequency more than :data:`SAME_FIELD_RTOL` from the target's (another field strength).

    Returns the relative frequency difference ``|F - F0| / F0`` (``F0`` the target's). ``source``
    and ``target_what`` name the two in the message (``"scan.nii.gz"``, ``"the model"``);
    ``remedy`` is what the caller can do with a basis set for the data's field, before "for
    297.2 MHz" (a command that simulates from a basis: ``"simulate with a --basis set"``).
    """
    if acq.nucleus != target.nucleus:
        raise IncompatibleDataError(
            f"{source}: {acq.nucleus} data, but {target_what} is for {target.nucleus}; no "
            f"conversion exists between nuclei: use a model or basis set for {acq.nucleus}"
        )
    freq_rel = abs(acq.spectrometer_freq_mhz - target.spectrometer_freq_mhz) / (
        target.spectrometer_freq_mhz
    )
    if freq_rel > SAME_FIELD_RTOL:
        raise NeedsOption(
            f"{source}: acquired at {_mhz(acq)}, but {target_what} is for {_mhz(target)}; "
            f"there is no safe conversion between field strengths: {remedy} for "
            f"{acq.spectrometer_freq_mhz:g} MHz, or pass ",
            Option("override_freq"),
            " if the header is wrong",
        )
    return freq_rel


@dataclass(frozen=True)
class GridSteps:
    """What :func:`to_grid` did, for the caller to word (``None``: the step was not needed).

    Attributes
    ----------
    shift_hz : rule 3, the frequency shift applied, Hz.
    resampled : rule 4, ``(dwell time before, points before, points after)``.
    fitted_from_points : rule 5, the number of points before truncation or zero-filling.
    """

    shift_hz: float | None = None
    resampled: tuple[float, int, int] | None = None
    fitted_from_points: int | None = None


def to_grid(
    samples: np.ndarray, acq: Acquisition, target: Acquisition, *, dwell_time_s: float
) -> tuple[np.ndarray, GridSteps]:
    """Rules 3, 4 and 5 in that order, with no checks (the caller made them): FIDs
    ``(..., acq.n_points)`` on ``acq`` -> ``(..., target.n_points)`` on ``target``.

    ``dwell_time_s`` is the data's dwell time after rule 2, which the caller decides (and
    words): ``acq.dwell_time_s``, or re-labelled ``dwell * F / F0`` to keep chemical shifts.
    The shift of rule 3 is made on the grid as acquired (``acq``).
    """
    steps: dict[str, Any] = {}
    shift_ppm = acq.ppm_reference - target.ppm_reference
    if abs(shift_ppm) > PPM_REFERENCE_ATOL:
        # ppm = ref + f / F on both sides, so a peak at f Hz belongs at f + shift_ppm * F Hz.
        shift_hz = shift_ppm * acq.spectrometer_freq_mhz
        time_s = axes.time_axis_s(samples.shape[-1], acq.dwell_time_s)
        samples = samples * np.exp(2j * np.pi * shift_hz * time_s)
        steps["shift_hz"] = shift_hz
    if not _same_dwell(dwell_time_s, target.dwell_time_s):
        n_before = samples.shape[-1]
        samples = resample_fid(samples, dwell_time_s, target.dwell_time_s)
        steps["resampled"] = (dwell_time_s, n_before, samples.shape[-1])
    if samples.shape[-1] != target.n_points:
        steps["fitted_from_points"] = samples.shape[-1]
        samples = fit_length(samples, target.n_points)
    return samples, GridSteps(**steps)


def relabelled(
    data: Gridded, target: Acquisition, provenance: Mapping[str, Any], **arrays: Any
) -> Gridded:
    """``data`` (a frozen FID or basis set) with the target's dwell time, spectrometer frequency
    and ppm reference, ``provenance`` and the converted ``arrays`` (``samples=...`` or
    ``fids=...``, already on the target's grid): the last step of every conversion."""
    return replace(
        data,
        dwell_time_s=target.dwell_time_s,
        spectrometer_freq_mhz=target.spectrometer_freq_mhz,
        ppm_reference=target.ppm_reference,
        provenance=provenance,
        **arrays,
    )


def fitted_length(n_points: int, target_n_points: int) -> str:
    """``"zero-filled 1024 -> 2048 points"`` or ``"truncated ..."`` (rule 5, for a message)."""
    verb = "zero-filled" if n_points < target_n_points else "truncated"
    return f"{verb} {n_points} -> {target_n_points} points"


def distinct_numbers(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` written with the fewest significant digits, from 6 up to 12, that tell
    them apart (a vendor's 127.786142 MHz against a basis' 127.7861 MHz read "127.786 to
    127.786" at ``:g``'s 6), or at 12 where they agree there."""
    for digits in range(6, 13):
        pair = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if pair[0] != pair[1]:
            return pair
    return pair


def _convert(
    samples: np.ndarray, acq: Acquisition, target: Acquisition
) -> tuple[np.ndarray, list[str]]:
    """Apply rules 3, 2, 4 and 5 in that order (rule 2 here, the others by :func:`to_grid`) and
    say what was done; the checks were made by the caller."""
    freq_mhz, target_mhz = acq.spectrometer_freq_mhz, target.spectrometer_freq_mhz
    rule2: list[str] = []
    dwell_s = acq.dwell_time_s
    if freq_mhz != target_mhz:
        ratio = target_mhz / freq_mhz
        freq_rel = abs(freq_mhz - target_mhz) / target_mhz
        if freq_rel <= FREQUENCY_RTOL:
            given, taken = distinct_numbers(freq_mhz, target_mhz)
            rule2.append(
                f"took the data's {given} MHz as {taken} MHz "
                f"({100 * freq_rel:.3f}% apart, within the {100 * FREQUENCY_RTOL:g}% tolerance)"
            )
        else:
            # Re-labelling the dwell time by F / F0 multiplies every frequency by F0 / F.
            dwell_s = acq.dwell_time_s / ratio
            d_from, d_to = distinct_numbers(acq.dwell_time_s * 1e3, dwell_s * 1e3)
            rule2.append(
                f"converted {freq_mhz:g} MHz -> {target_mhz:g} MHz keeping "
                f"chemical shifts: dwell time re-labelled {d_from} -> {d_to} ms (every "
                f"frequency in Hz x {ratio:.6g})"
            )
    samples, steps = to_grid(samples, acq, target, dwell_time_s=dwell_s)
    conversions: list[str] = []
    if steps.shift_hz is not None:
        conversions.append(
            f"shifted by {steps.shift_hz:+.4g} Hz so that 0 Hz is {target.ppm_reference:g} ppm "
            f"(it was {acq.ppm_reference:g} ppm)"
        )
    conversions += rule2
    if steps.resampled is not None:
        dwell_s, n_before, n_after = steps.resampled
        conversions.append(
            f"Fourier-resampled dwell time {dwell_s * 1e3:.6g} -> {target.dwell_time_s * 1e3:g} "
            f"ms ({1 / dwell_s:.6g} -> {1 / target.dwell_time_s:g} Hz spectral width): "
            f"{n_before} -> {n_after} points over the same {n_before * dwell_s * 1e3:.6g} ms"
        )
    if steps.fitted_from_points is not None:
        conversions.append(fitted_length(steps.fitted_from_points, target.n_points))
    return samples, conversions


def resample_fid(samples: np.ndarray, dwell_time_s: float, new_dwell_time_s: float) -> np.ndarray:
    """Fourier-resample FIDs to another dwell time over the same duration (rule 4).

    The FID, zero-extended to twice its length (nothing was measured after it, and the end of
    the acquisition must not wrap onto its start), with its first point halved, is expanded as
    ``x(t) = (1/P) sum_k X_k exp(2 pi i f_k t)`` (``X`` its ``P``-point DFT, ``f_k`` the DFT
    frequencies). Only the terms in the new band ``-1/(2 new_dwell) <= f_k < 1/(2 new_dwell)``
    are kept and ``x`` is evaluated at ``t = m * new_dwell_time_s``, ``m = 0 .. M-1``,
    ``M = floor(N * dwell_time_s / new_dwell_time_s)`` (every new sample inside the
    acquisition), with the chirp z-transform; then the first point is doubled back.

    Halving the first point removes the constant ``x[0] / 2`` that the DFT of a sampled causal
    FID adds to every bin (Zhu, Torchia & Bax, J. Magn. Reson. A 105:219, 1993); without it,
    cropping the band would cut that offset with it (a decimation by 2 would lose a quarter of
    the first point, i.e. of the spectral area).

    Parameters
    ----------
    samples : complex FIDs, shape ``(..., N)``.
    dwell_time_s, new_dwell_time_s : old and new sampling intervals, s.

    Returns
    -------
    Resampled FIDs, shape ``(..., M)``. Samples on the old time grid keep their value up to the
    part of the spectrum outside the new band; samples between old ones near ``t = 0`` carry a
    small Gibbs ripple from the FID's jump at ``t = 0``.
    """
    n = samples.shape[-1]
    n_pad = 2 * n
    n_new = int(math.floor(n * dwell_time_s / new_dwell_time_s + 1e-9))
    band_edge = n_pad * dwell_time_s / new_dwell_time_s / 2  # band edge in units of bins
    # Bins -edge <= k < edge; the 1e-9 keeps a whole-number edge on the lower side of the band,
    # where numpy's fftfreq puts the Nyquist bin.
    k_lo = max(-n, math.ceil(-band_edge - 1e-9))
    k_hi = min(n - 1, math.ceil(band_edge - 1e-9) - 1)
    halved = np.concatenate([0.5 * samples[..., :1], samples[..., 1:]], axis=-1)
    coefficients = np.fft.fftshift(np.fft.fft(halved, n=n_pad, axis=-1) / n_pad, axes=-1)
    band = coefficients[..., n + k_lo : n + k_hi + 1]  # index n holds k = 0 after fftshift
    # sum_q band_q exp(2 pi i (k_lo + q) m r), r = new_dwell / (P dwell): the chirp z-transform
    # sum_q band_q exp(2 pi i r q m), times exp(2 pi i k_lo m r).
    step = new_dwell_time_s / (n_pad * dwell_time_s)
    out = chirp_z(band, n_new, step)
    out = out * np.exp(2j * np.pi * k_lo * step * np.arange(n_new))
    out[..., 0] *= 2.0
    return out


def chirp_z(x: np.ndarray, n_out: int, r: float) -> np.ndarray:
    """``X_m = sum_q x_q exp(2 pi i r q m)``, ``m = 0 .. n_out-1``, over the last axis of ``x``
    ``(..., L)``: the chirp z-transform on the unit circle (``scipy.signal.czt`` with
    ``w = exp(2 pi i r)``, ``a = 1``), by Bluestein's convolution (``q m = (q^2 + m^2 -
    (m - q)^2) / 2``) with ``scipy.fft``: O((L + n_out) log) for any real ``r``. Written here
    because a one-spectrum ``fit`` of data at another dwell time than the basis' (a 2000 Hz
    Philips file, the 4000 Hz default basis) imported ``scipy.signal`` for it: 1.7 s of wall
    time on a loaded machine, 0.4-0.7 s of the fit's ~7 s of CPU."""
    import scipy.fft

    n_in = x.shape[-1]
    k = np.arange(max(n_in, n_out), dtype=np.float64)
    # exp(i pi r k^2), the phase reduced mod 2 pi before the exponential (k^2 r is large)
    chirp = np.exp(1j * np.pi * np.mod(r * k * k, 2.0))
    size = scipy.fft.next_fast_len(n_in + n_out - 1)
    # the kernel conj(chirp) at lags -(L-1) .. n_out-1, lag j at index j mod size
    kernel = np.zeros(size, np.complex128)
    kernel[:n_out] = np.conj(chirp[:n_out])
    kernel[size - n_in + 1 :] = np.conj(chirp[1:n_in][::-1])
    spectrum = scipy.fft.fft(x * chirp[:n_in], n=size, axis=-1) * scipy.fft.fft(kernel)
    return scipy.fft.ifft(spectrum, axis=-1)[..., :n_out] * chirp[:n_out]


def fit_length(samples: np.ndarray, n_points: int) -> np.ndarray:
    """Truncate or zero-fill FIDs at their end to ``n_points``: ``(..., N) -> (..., n_points)``."""
    n = samples.shape[-1]
    if n >= n_points:
        return samples[..., :n_points]
    pad = [(0, 0)] * (samples.ndim - 1) + [(0, n_points - n)]
    return np.pad(samples, pad)


def require_same_grid(
    fid_acq: Acquisition,
    target: Acquisition,
    *,
    what: str,
    target_what: str,
    remedy: str | None = None,
) -> None:
    """Refuse data whose grid differs from the target's, with no conversion (one line each).

    Parameters
    ----------
    fid_acq : the data's grid.
    target : the grid required (a model's or a basis set's).
    what, target_what : how the message names them, e.g. ``"the data"``, ``"the basis set"``.
    remedy : what to do, said after the difference in place of the library's own advice
        (convert with :func:`match_acquisition`), for a caller whose user cannot call it (a
        command's refusal).

    Raises
    ------
    IncompatibleDataError : on the first difference (nucleus, points, dwell time, spectrometer
        frequency beyond :data:`FREQUENCY_RTOL`, ppm reference).
    """
    found = _grid_difference(fid_acq, target, what=what, target_what=target_what)
    if found is not None:
        difference, advice = found
        raise IncompatibleDataError(f"{difference}; {advice if remedy is None else remedy}")


def _grid_difference(
    fid_acq: Acquisition, target: Acquisition, *, what: str, target_what: str
) -> tuple[str, str] | None:
    """The first difference of :func:`require_same_grid`'s and the library's advice for it
    (None: the same grid)."""
    hint = "scaloquant.signal.match.match_acquisition converts what is safe"  # a library call
    if fid_acq.nucleus != target.nucleus:
        return (
            f"{what}: nucleus {fid_acq.nucleus}, {target_what}: {target.nucleus}",
            f"use one made for {fid_acq.nucleus}",
        )
    if fid_acq.n_points != target.n_points:
        return (
            f"{what}: {fid_acq.n_points} points, {target_what}: {target.n_points}",
            f"truncate or zero-fill to match ({hint})",
        )
    if not _same_dwell(fid_acq.dwell_time_s, target.dwell_time_s):
        return (
            f"{what}: dwell time {_dwell(fid_acq)}, {target_what}: {_dwell(target)}",
            f"use one made for this dwell time, or resample the data ({hint}, with force)",
        )
    if not math.isclose(
        fid_acq.spectrometer_freq_mhz, target.spectrometer_freq_mhz, rel_tol=FREQUENCY_RTOL
    ):
        return (
            f"{what}: {_mhz(fid_acq)}, {target_what}: {_mhz(target)}",
            "use one made for this field strength",
        )
    if not math.isclose(fid_acq.ppm_reference, target.ppm_reference, abs_tol=PPM_REFERENCE_ATOL):
        return (
            f"{what}: 0 Hz = {fid_acq.ppm_reference:g} ppm, {target_what}: 0 Hz = "
            f"{target.ppm_reference:g} ppm",
            f"give both the same reference ({hint})",
        )
    return None


def require_same_scanner(
    reference: Acquisition,
    data: Acquisition,
    *,
    what: str,
    data_what: str,
    advice: tuple[str | Option, ...],
) -> None:
    """Refuse a reference scan (a water reference, a metabolite-nulled MM spectrum) of another
    nucleus, or acquired at another spectrometer frequency than the data (beyond
    :data:`FREQUENCY_RTOL`: another session's or another subject's file), whatever ``force``
    says; ``advice`` ends the one line (:class:`~scaloquant.errors.NeedsOption` parts).

    Raises
    ------
    IncompatibleDataError : another nucleus or field (one line naming both values).
    """
    if reference.nucleus != data.nucleus:
        raise NeedsOption(
            f"{what} is {reference.nucleus} and {data_what} {data.nucleus}; ", *advice
        )
    if not math.isclose(
        reference.spectrometer_freq_mhz, data.spectrometer_freq_mhz, rel_tol=FREQUENCY_RTOL
    ):
        raise NeedsOption(
            f"{what} was acquired at {_mhz(reference)} and {data_what} at {_mhz(data)}: "
            "not the same scanner; ",
            *advice,
        )


def compare_reference(
    reference: Acquisition, data: Acquisition, *, what: str, data_what: str = "the data"
) -> tuple[str, ...]:
    """Check a reference scan (the water reference) against the data it belongs to.

    A reference is acquired in the same session, on the same scanner: its nucleus and its
    spectrometer frequency (within :data:`FREQUENCY_RTOL`) must be the data's, whatever
    ``force`` says, since another field means another session's or another subject's file.
    Its points and dwell time may differ (the water area, ``|w(0)|``, depends on neither): each
    difference gives one sentence, returned for the user to see.

    Raises
    ------
    IncompatibleDataError : another nucleus or field (one line naming both values).
    """
    require_same_scanner(
        reference,
        data,
        what=what,
        data_what=data_what,
        advice=("give the water reference acquired with the data (", Option("water"), "), or none"),
    )
    notes = []
    if reference.n_points != data.n_points or not _same_dwell(
        reference.dwell_time_s, data.dwell_time_s
    ):
        notes.append(
            f"{what} has {reference.n_points} points at {_dwell(reference)}, {data_what} "
            f"{data.n_points} at {_dwell(data)}: fine for its area |w(0)|, which depends on "
            "neither"
        )
    return tuple(notes)


def stated_sequence(fid: OnGrid) -> tuple[str | None, float | None]:
    """Sequence name and echo time in s as the file stated them (``None`` where it did not).

    Readers in :mod:`scaloquant.io` record them in ``provenance["sequence"]`` and
    ``provenance["echo_time_s"]``.
    """
    return _sequence_and_te(fid.provenance.get("sequence"), fid.provenance.get("echo_time_s"))


def basis_sequence(metadata: Mapping[str, Any]) -> tuple[str | None, float | None]:
    """Sequence name and echo time in s from basis-set metadata (as a checkpoint carries it).

    Reads ``"sequence"`` and ``"echo_time_ms"`` (the default basis: ``"PRESS"``, 30.0), or
    ``"echo_time_s"``; a missing, empty or non-positive value gives ``None``.
    """
    te = metadata.get("echo_time_s")
    if te is None and _positive(metadata.get("echo_time_ms")) is not None:
        te = float(metadata["echo_time_ms"]) * 1e-3
    return _sequence_and_te(metadata.get("sequence"), te)


def sequence_family(name: str) -> str | None:
    """The sequence family of a header name (``"svs_se"`` -> ``"PRESS"``), ``None`` if unknown."""
    key = _name_key(name)
    return next((family for family, pat in _SEQUENCE_FAMILIES if re.search(pat, key)), None)


def echo_times_differ(a_s: float | None, b_s: float | None) -> bool:
    """Whether two stated echo times (s; None: not stated) differ by more than
    :data:`ECHO_TIME_ATOL_S`: the refusal of rule 6 (:func:`match_acquisition`), and of a
    ``--grid-from`` file (``scaloquant.cli._grid``)."""
    return a_s is not None and b_s is not None and abs(a_s - b_s) > ECHO_TIME_ATOL_S


def different_families(a: str | None, b: str | None) -> tuple[str, str] | None:
    """The sequence families of two stated sequence names (None: not stated) where both are
    known and differ, else None: the refusal of rule 6, as :func:`echo_times_differ`."""
    if a is None or b is None:
        return None
    return _differing(sequence_family(a), sequence_family(b))


def _differing(a: str | None, b: str | None) -> tuple[str, str] | None:
    """Two sequence families (None: unknown) where both are known and differ, else None."""
    return (a, b) if a is not None and b is not None and a != b else None


def _sequence_and_te(sequence: Any, echo_time_s: Any) -> tuple[str | None, float | None]:
    name = sequence.strip() if isinstance(sequence, str) and sequence.strip() else None
    return name, _positive(echo_time_s)


def _positive(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return None
    value = float(value)
    return value if math.isfinite(value) and value > 0 else None


def _compare_sequences(
    data: tuple[str | None, float | None],
    target: tuple[str | None, float | None],
    target_what: str,
) -> tuple[list[_Refusal], list[str]]:
    """Rule 6: refusals (accepted with force, then also warned) and plain warnings."""
    (data_seq, data_te), (target_seq, target_te) = data, target
    refusals, warnings = [], []
    if echo_times_differ(data_te, target_te):
        what = f"TE {data_te * 1e3:g} ms and {target_what}'s TE {target_te * 1e3:g} ms"
        refusals.append(
            _Refusal(
                what,
                (
                    "J-evolution and T2 weighting differ between echo times, so every "
                    "amplitude would be biased: pass ",
                    Option("force"),
                    " to quantify anyway, or use "
                    + _instead(target_what, f"a basis set for TE {data_te * 1e3:g} ms"),
                ),
            )
        )
        warnings.append(f"{what}: amplitudes are biased by the echo-time difference")
    if data_seq is not None and target_seq is not None:
        data_family, target_family = sequence_family(data_seq), sequence_family(target_seq)
        if _differing(data_family, target_family):
            what = f"sequence {data_seq} ({data_family}) and {target_what}'s {target_seq}"
            refusals.append(
                _Refusal(
                    what,
                    (
                        "another sequence gives other multiplet shapes and relaxation "
                        "weighting: pass ",
                        Option("force"),
                        " to quantify anyway, or use "
                        + _instead(target_what, f"a {data_family} basis set"),
                    ),
                )
            )
            warnings.append(f"{what}: amplitudes are biased by the sequence difference")
        elif (data_family is None or target_family is None) and _name_key(data_seq) != _name_key(
            target_seq
        ):
            warnings.append(
                f"could not tell whether the data's sequence {data_seq!r} is {target_what}'s "
                f"{target_seq!r}; check that they match"
            )
    return refusals, warnings


def _instead(target_what: str, basis_set: str) -> str:
    """What to use in place of ``target_what``: ``basis_set`` itself for the fit's basis, a
    model trained with it for a model (the fit's message read "use the basis set trained with
    a basis set for TE 30 ms")."""
    return basis_set if "basis" in target_what else f"a model trained with {basis_set}"


def _name_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _require_window(acq: Acquisition, target: Acquisition, source: str, target_what: str) -> None:
    """Refuse when the data's band misses part of the window the target's grid holds (1H)."""
    if acq.nucleus != "1H":
        return
    data_lo, data_hi = _band_ppm(acq)
    target_lo, target_hi = _band_ppm(target)
    lo, hi = max(WINDOW_PPM_1H[0], target_lo), min(WINDOW_PPM_1H[1], target_hi)
    if lo < hi and (lo < data_lo or hi > data_hi):
        raise NeedsOption(
            f"{source} covers {data_lo:.2f} to {data_hi:.2f} ppm ({1 / acq.dwell_time_s:g} Hz at "
            f"{acq.spectrometer_freq_mhz:g} MHz, 0 Hz = {acq.ppm_reference:g} ppm), which misses "
            f"part of the {lo:g}-{hi:g} ppm {target_what} needs; no conversion can recover it: "
            "acquire with a wider spectral width, or pass ",
            Option("override_dwell"),
            " if the header is wrong",
        )


def _band_ppm(acq: Acquisition) -> tuple[float, float]:
    """Lowest and highest chemical shift of the spectrum's band ``[-SW/2, SW/2)``, ppm."""
    half_ppm = 0.5 / acq.dwell_time_s / acq.spectrometer_freq_mhz
    return acq.ppm_reference - half_ppm, acq.ppm_reference + half_ppm


def _same_dwell(a_s: float, b_s: float) -> bool:
    return math.isclose(a_s, b_s, rel_tol=DWELL_RTOL)


def _mhz(acq: Acquisition) -> str:
    tesla = f", {acq.field_strength_t:.1f} T" if acq.nucleus == "1H" else ""
    return f"{acq.spectrometer_freq_mhz:g} MHz ({acq.nucleus}{tesla})"


def _dwell(acq: Acquisition) -> str:
    return f"{acq.dwell_time_s * 1e3:g} ms ({1 / acq.dwell_time_s:g} Hz spectral width)"


def _describe_source(fid: OnGrid) -> str:
    source = fid.provenance.get("source")
    return PurePath(str(source)).name if source else "the data"
