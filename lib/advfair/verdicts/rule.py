"""The rule of one part: the vocabulary, the smallest effect of interest, and how an interval decides."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..validation import check_choice, fail

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive at this scale"
NOT_TESTABLE = "not testable at this scale"
OUTCOMES = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE)
_PRECEDENCE = (NOT_REPRODUCED, NOT_TESTABLE, INCONCLUSIVE, REPRODUCED)
ALPHA = 0.05
NEGLIGIBLE = "below the smallest effect of interest"


@dataclass(frozen=True)
class Effect:
    """A smallest effect of interest: its size in the statistic's own units, and where the size comes from."""

    size: float
    source: str

    def __post_init__(self) -> None:
        if not (np.isfinite(self.size) and self.size >= 0):
            fail("smallest effect of interest", self.size, "a finite size >= 0")


# Stated conventions for claims whose paper gives no effect size.
ACCURACY_POINT = Effect(0.01, "convention: 1 pt of accuracy")
SD_POINT = Effect(0.01, "convention: 1 pt of class SD or gap")
NSD_STEP = Effect(0.02, "convention: 0.02 NSD")
THRESHOLD_ONLY = Effect(0.0, "none beyond the claim's own threshold")


@dataclass(frozen=True)
class Rule:
    """How a part's outcome follows from its interval: the claimed side ("greater", "less" or "within" a margin
    around 0), the threshold (the margin for "within"), the smallest effect of interest beyond it, and whether an
    interval touching the threshold still holds (`inclusive`: "at most", "at least")."""

    side: str
    threshold: float = 0.0
    effect: float = 0.0
    inclusive: bool = False

    def __post_init__(self) -> None:
        check_choice("side", self.side, ("greater", "less", "within"))

    def decide(self, lo: float, hi: float) -> tuple[str, str]:
        """(outcome, note) of an interval."""
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return INCONCLUSIVE, ""
        t, d = self.threshold, self.effect
        if self.side == "within":  # the note says when "close" still hides a significant shift
            shift = ("significantly below 0" if hi < 0 else "significantly above 0" if lo > 0 else
                     "the interval is wider than the margin: this scale cannot show closeness" if hi - lo > 2 * t else "")
            if -t <= lo and hi <= t:
                return REPRODUCED, shift
            return (NOT_REPRODUCED, shift) if lo > t or hi < -t else (INCONCLUSIVE, shift)
        sign = 1.0 if self.side == "greater" else -1.0
        near, far = (lo, hi) if sign > 0 else (-hi, -lo)  # the interval seen on the claimed side
        t = sign * t
        holds = near >= t if self.inclusive else near > t
        if far < t + d:
            return NOT_REPRODUCED, ("" if far < t else ("on the claimed side but " if holds else "") + NEGLIGIBLE)
        return (REPRODUCED, "") if holds else (INCONCLUSIVE, "")

    def p_against(self, value: float, se: float, df: float) -> float:
        """The p-value of the not-reproduced side (doubled, so that p < ALPHA matches a 95% two-sided interval),
        from a t (normal when df is infinite) reference: what Holm's correction orders."""
        t, d = self.threshold, self.effect
        if not (np.isfinite(value) and np.isfinite(se)):
            return 1.0
        dist = stats.t(df) if np.isfinite(df) else stats.norm()
        if self.side == "within":
            if se <= 0:
                return 0.0 if abs(value) > t else 1.0
            return float(min(1.0, 2 * dist.sf((abs(value) - t) / se)))
        bound = t + d if self.side == "greater" else t - d
        z = (value - bound) / se if se > 0 else (-np.inf if value < bound else np.inf)
        one_sided = dist.cdf(z) if self.side == "greater" else dist.sf(z)
        return float(min(1.0, 2 * one_sided))

    def rule(self, scale: float) -> str:
        t = scale * self.threshold
        if self.side == "within":
            return f"within ±{t:g}"
        symbol = {("greater", False): ">", ("greater", True): "≥", ("less", False): "<", ("less", True): "≤"}
        text = f"{symbol[self.side, self.inclusive]} {t:g}"
        return f"{text}, effect of interest {scale * self.effect:g}" if self.effect else text
