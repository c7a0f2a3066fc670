"""Soft priors on ratios of amplitudes: LCModel's ``CHRATO``.

LCModel holds weakly determined amplitudes near typical ratios to well-determined ones with
Gaussian priors of the form (``CONCPR`` in ``LCModel.f`` of LCModel 6.3, BSD-3, read in
``../shared/peers/lcmodel/source``)::

    c_num - r c_den = 0 +- s * c_w            (one pseudo-observation per prior)

with ``c_num`` one amplitude, ``c_den`` a (weighted) sum of amplitudes, ``r +- s`` the expected
ratio and its SD, and ``c_w`` the denominator's amplitude (plus the ``+WT=`` terms) taken from a
preliminary fit, so that the prior's width scales with the spectrum. The rows are appended to
the least-squares system scaled by the data's noise SD (LCModel's ``SDREF``), i.e. the
objective gains::

    sigma^2 sum_r ((c_num - r c_den) / (s_r c_w,r))^2

A quadratic in the amplitudes ``a``: ``a^T Q a`` with ``Q = sigma^2 sum_r w_r w_r^T``,
``w_r = (e_num - r e_den) / (s_r c_w,r)``; it adds to the Gram matrix of the
variable-projection fit, so the non-negative solve and the Cramér–Rao bounds (a Gaussian prior
is Fisher information) include it exactly.

LCModel's defaults for brain (``DATA chrato``; ``Big3`` = Cr + PCr + NAA + NAAG + 3 x
choline, a trailing ``*`` a name prefix; the GSH prior is dropped above TE 49 ms)::

    Lip09/Lip13* = .267 +- .1    +WT= MM12        MM20/MM09* = 1.5 +- .375  +WT= Lip09*
    Lip20/Lip13* = .15 +- .07    +WT= MM12        MM12/MM09* = .3 +- .1     +WT= Lip09*
    MM14/MM09*  = .75 +- .45     +WT= Lip09*      MM17/MM09* = .375 +- .3   +WT= Lip09*
    Asp/Big3 = .05 +- .05   GABA/Big3 = .03 +- .03   Glc/Big3 = .03 +- .03
    Scyllo/Big3 = .01 +- .01   Tau/Big3 = .05 +- .05   GSH/Gln+GSH = .286 +- .126

(LCModel's ``-CrCH2/totCr`` row needs its ``-CrCH2`` component, which is not modelled here.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..metabolites import canonical

#: ``c_w`` of a prior whose denominator fitted to zero: this fraction of the sum of all
#: amplitudes (LCModel's ``FCSUM``, default 1e-3), a strong pull of the numerator to zero.
ZERO_DENOMINATOR_FRACTION = 1e-3


@dataclass(frozen=True)
class RatioPrior:
    """``numerator / sum(factor * denominator) = expected +- sd`` (LCModel's ``CHRATO``).

    Terms are canonical metabolite names (:func:`scaloquant.metabolites.canonical`) or name
    prefixes ending in ``*``; ``weight_extra`` terms only add to the width's scale ``c_w``.
    ``max_echo_time_ms``: the prior applies up to this echo time (``None``: always).
    """

    numerator: str
    denominator: tuple[tuple[str, float], ...]
    expected: float
    sd: float
    weight_extra: tuple[str, ...] = ()
    max_echo_time_ms: float | None = None

    def __str__(self) -> str:
        den = "+".join(n if f == 1 else f"{f:g}*{n}" for n, f in self.denominator)
        text = f"{self.numerator}/{den} = {self.expected:g} +- {self.sd:g}"
        return text + (f" +WT= {'+'.join(self.weight_extra)}" if self.weight_extra else "")


#: LCModel's macromolecule/lipid ratio priors (about its parametric components of
#: :mod:`scaloquant.physics.macromolecules`; ``Lip13*`` is our single ``Lip13``).
LCMODEL_MM_PRIORS: tuple[RatioPrior, ...] = (
    RatioPrior("Lip09", (("Lip13*", 1.0),), 0.267, 0.1, ("MM12",)),
    RatioPrior("Lip20", (("Lip13*", 1.0),), 0.15, 0.07, ("MM12",)),
    RatioPrior("MM20", (("MM09*", 1.0),), 1.5, 0.375, ("Lip09*",)),
    RatioPrior("MM12", (("MM09*", 1.0),), 0.3, 0.1, ("Lip09*",)),
    RatioPrior("MM14", (("MM09*", 1.0),), 0.75, 0.45, ("Lip09*",)),
    RatioPrior("MM17", (("MM09*", 1.0),), 0.375, 0.3, ("Lip09*",)),
)

#: LCModel's ``Big3``: total creatine and NAA, and three times total choline.
BIG3: tuple[tuple[str, float], ...] = (
    ("Cr", 1.0),
    ("PCr", 1.0),
    ("NAA", 1.0),
    ("NAAG", 1.0),
    ("GPC", 3.0),
    ("PCho", 3.0),
)

#: LCModel's metabolite ratio priors (weak metabolites to Big3; GSH to Gln + GSH up to TE 49 ms).
LCMODEL_METABOLITE_PRIORS: tuple[RatioPrior, ...] = (
    RatioPrior("Asp", BIG3, 0.05, 0.05),
    RatioPrior("GABA", BIG3, 0.03, 0.03),
    RatioPrior("Glc", BIG3, 0.03, 0.03),
    RatioPrior("sIns", BIG3, 0.01, 0.01),
    RatioPrior("Tau", BIG3, 0.05, 0.05),
    RatioPrior("GSH", (("Gln", 1.0), ("GSH", 1.0)), 0.286, 0.126, max_echo_time_ms=49.0),
)

#: ``--ratio-priors`` choices.
RATIO_PRIOR_SETS: dict[str, tuple[RatioPrior, ...]] = {
    "none": (),
    "mm": LCMODEL_MM_PRIORS,
    "lcmodel": LCMODEL_MM_PRIORS + LCMODEL_METABOLITE_PRIORS,
}


@dataclass(frozen=True)
class RatioRows:
    """The priors that apply to a basis, as rows over its ``M`` amplitudes.

    ``coefficients`` ``(R, M)``: ``e_num - r e_den``; ``scale_terms`` ``(R, M)``: the terms of
    ``c_w`` (denominator factors and ``+WT=`` terms); ``sd`` ``(R,)``; ``labels`` the priors.
    """

    coefficients: np.ndarray
    scale_terms: np.ndarray
    sd: np.ndarray
    labels: tuple[str, ...]

    @property
    def n_rows(self) -> int:
        return len(self.labels)


def _term_factors(term: str, names: tuple[str, ...]) -> np.ndarray:
    """``(M,)`` 1 where a basis name matches ``term`` (a canonical name or a ``prefix*``)."""
    if term.endswith("*"):
        prefix = term[:-1]
        return np.array([float(canonical(n).startswith(prefix)) for n in names])
    return np.array([float(canonical(n) == term) for n in names])


def ratio_rows(
    priors: tuple[RatioPrior, ...], names: tuple[str, ...], echo_time_ms: float | None = None
) -> RatioRows:
    """The rows of ``priors`` for a basis with ``names``. A prior is left out, as LCModel leaves
    it, when the basis lacks its numerator or every denominator term, or when the echo time is
    above its ``max_echo_time_ms`` (unknown echo time: kept)."""
    m = len(names)
    coefficients, scale_terms, sd, labels = [], [], [], []
    for prior in priors:
        if (
            prior.max_echo_time_ms is not None
            and echo_time_ms is not None
            and echo_time_ms > prior.max_echo_time_ms
        ):
            continue
        numerator = _term_factors(prior.numerator, names)
        denominator = np.zeros(m)
        for term, factor in prior.denominator:
            denominator += factor * _term_factors(term, names)
        if not numerator.any() or not denominator.any():
            continue
        extra = np.zeros(m)
        for term in prior.weight_extra:
            extra += _term_factors(term, names)
        coefficients.append(numerator - prior.expected * denominator)
        scale_terms.append(denominator + extra)
        sd.append(prior.sd)
        labels.append(str(prior))
    if not labels:
        return RatioRows(np.zeros((0, m)), np.zeros((0, m)), np.zeros(0), ())
    return RatioRows(np.array(coefficients), np.array(scale_terms), np.array(sd), tuple(labels))


def prior_matrix(
    coefficients: torch.Tensor,
    scale_terms: torch.Tensor,
    sd: torch.Tensor,
    amplitudes: torch.Tensor,
    noise_var: torch.Tensor,
) -> torch.Tensor:
    """``Q`` ``(B, M, M)`` of the module docstring from the rows of :class:`RatioRows` as
    tensors (``(R, M)``, ``(R, M)``, ``(R,)``), preliminary ``amplitudes`` ``(B, M)`` (which set
    each prior's width) and the noise variance per real part ``(B,)``.

    A prior whose scale ``c_w`` fitted to zero takes :data:`ZERO_DENOMINATOR_FRACTION` of the
    sum of all amplitudes instead; if that is zero too the prior is dropped (LCModel's rules).
    """
    scale = amplitudes @ scale_terms.T  # (B, R)
    fallback = ZERO_DENOMINATOR_FRACTION * amplitudes.sum(-1, keepdim=True)
    scale = torch.where(scale > 0, scale, fallback)
    weight = torch.where(scale > 0, 1.0 / (scale * sd).clamp_min(1e-300), 0.0)  # (B, R)
    w = weight[:, :, None] * coefficients  # (B, R, M)
    return noise_var[:, None, None] * (w.mT @ w)
