"""Small statistics helpers shared by the models and the evaluation (no torch import)."""

from __future__ import annotations

from statistics import NormalDist

from .errors import ConfigError


def normal_quantile(level: float) -> float:
    """Half-width, in standard deviations, of the central ``level`` interval of a normal
    distribution (1.95996 for 0.95, 0.99446 for 0.68)."""
    if not 0.0 < level < 1.0:
        raise ConfigError(f"a coverage level must lie between 0 and 1, got {level}")
    return NormalDist().inv_cdf(0.5 + level / 2.0)
