"""Evaluation: the class-wise protocol, its metrics, paired statistics and diagnostics.

- `protocol`: `evaluate(deployed_model, points, protocol) -> Evaluation`, the one evaluation every chapter uses;
- `metrics`: per-class accuracy, spread, rank agreement, confusion, the class-wise report;
- `paired`: paired bootstrap intervals and McNemar's test on outcomes of the same points;
- `compare`: the same for evaluations (two models, or two attacks, on the same points);
- `diagnostics`: logit scale, vanishing gradients, feature norms.
"""
from .compare import (attack_mcnemar, class_differences, compare_attacks, compare_models, evaluation_statistic,
                      rank_agreement, same_points)
from .diagnostics import feature_norm_ratio, mean_logit_margin, zero_gradient_fraction
from .metrics import (attack_gains, boundary_error, classwise_report, confusion_matrix, group_accuracy, group_report,
                      head_middle_tail, per_class_accuracy, permutation_spearman, robust_correctness, spearman,
                      spearman_rows, spread, spread_rows)
from .paired import (Estimate, bootstrap_per_class, interval, mcnemar, paired_difference, paired_statistic,
                     stratified_bootstrap)
from .protocol import (AttackSpec, Evaluation, Points, Protocol, evaluate, predict, robust_outcomes,
                       standard_attacks, tpgd_name)

__all__ = [
    "attack_mcnemar", "class_differences", "compare_attacks", "compare_models", "evaluation_statistic",
    "rank_agreement", "same_points",
    "AttackSpec", "Estimate", "Evaluation", "Points", "Protocol", "attack_gains", "boundary_error",
    "bootstrap_per_class", "classwise_report", "confusion_matrix", "evaluate", "feature_norm_ratio",
    "group_accuracy", "group_report", "head_middle_tail", "interval", "mcnemar", "mean_logit_margin",
    "paired_difference", "paired_statistic", "per_class_accuracy", "permutation_spearman",
    "predict", "robust_correctness", "robust_outcomes", "spearman", "spearman_rows", "spread", "spread_rows",
    "standard_attacks", "stratified_bootstrap", "tpgd_name", "zero_gradient_fraction",
]
