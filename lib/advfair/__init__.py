"""advfair: class-wise robustness and robust fairness in adversarial training.

Flow: data -> models -> attacks -> objectives -> trainer -> evaluation -> experiments -> notebook / CLI.
`advfair.evaluate(model, dataset=..., eps=..., attacks=...)` gives the class-wise report of any model.
"""
__version__ = "0.2.0"


def evaluate(model, **kwargs):
    """The class-wise report of any model on a test set (see `advfair.api.evaluate`)."""
    from .api import evaluate as _evaluate

    return _evaluate(model, **kwargs)
