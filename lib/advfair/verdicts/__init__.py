"""Verdicts: tested functions of paired statistics, in one vocabulary for every chapter.

A claim is tested in parts (a claim with an "and" has one part per conjunct). Each part compares a paired
estimate on the same points with the claim's direction and the claim's *smallest effect of interest* δ,
declared in the chapter's `claims` module before any result is read (`Effect`):

- `reproduced`: the 95% interval lies beyond the threshold on the claimed side;
- `not reproduced`: the interval excludes every effect of interest, i.e. its far end lies short of the
  threshold + δ on the claimed side (the interval lies on the other side, or inside the negligible band). An
  interval on the claimed side but short of δ is `not reproduced; below the smallest effect of interest`,
  never `reproduced`;
- `inconclusive at this scale`: otherwise.

A claim names its primary parts; secondary parts are shown, not voted. All primary parts must hold for
`reproduced` (an intersection-union test needs no correction). The `not reproduced` side is corrected by
Holm's step-down over the primary parts: a part rejects the claim only if its interval does and its p-value
survives Holm at ALPHA.

Degeneracy gates (a model or class too weak to be diagnosed: clean accuracy below 3x chance, an adversarially
trained model's robust accuracy below chance, a class below chance) are evaluated before the parts, always, each on
its interval: `degenerate` when the upper bound lies below the floor, `testable` when the lower bound lies above
it, `borderline` otherwise. A degenerate or borderline gate makes the claim `not testable at this scale`.

`pool` makes a claim's verdict from its per-run verdicts over k training seeds (same config, same test points):
each part's estimate becomes the mean of the k per-seed estimates with a Welch-Satterthwaite t interval that
counts both training variance (the spread over seeds) and test-point variance (the per-seed bootstrap SE,
counted in full, which holds whatever the correlation of the seeds' errors on the shared points). A claim that
compares training procedures cannot be decided by one seed: pooled over one run, it stays inconclusive.
"""
from .gates import CLASS_FLOOR, MODEL_FLOOR, ROBUST_FLOOR, class_gate, model_floor, model_gate, robust_gate
from .parts import (COMPARES, Part, Verdict, at_least, at_most, combine, exact_test, gate_status, greater, holm, less,
                    untestable, within)
from .pooling import pool, pooled_estimate, run_record, with_stability
from .rule import (ACCURACY_POINT, ALPHA, INCONCLUSIVE, NEGLIGIBLE, NOT_REPRODUCED, NOT_TESTABLE, NSD_STEP, OUTCOMES,
                   REPRODUCED, SD_POINT, THRESHOLD_ONLY, Effect, Rule)

__all__ = ["ACCURACY_POINT", "ALPHA", "CLASS_FLOOR", "COMPARES", "Effect", "INCONCLUSIVE", "MODEL_FLOOR", "NEGLIGIBLE",
           "NOT_REPRODUCED", "NOT_TESTABLE", "NSD_STEP", "OUTCOMES", "Part", "REPRODUCED", "ROBUST_FLOOR", "SD_POINT",
           "THRESHOLD_ONLY", "Rule", "Verdict", "at_least", "at_most", "class_gate", "combine", "exact_test",
           "gate_status", "greater", "holm", "less", "model_floor", "model_gate", "pool", "pooled_estimate",
           "robust_gate", "run_record", "untestable", "with_stability", "within"]
