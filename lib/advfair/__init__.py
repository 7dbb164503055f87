"""advfair: class-wise robustness and robust fairness in adversarial training.

Flow: data -> models -> attacks -> objectives -> trainer -> evaluation -> experiments -> notebook / CLI.
`advfair.evaluate(model, dataset=..., eps=..., attacks=...)` gives the class-wise report of any model.
"""
import os as _os

__version__ = "0.2.0"

# OpenMP threads that wait by spinning stall at every barrier when another job takes one of their cores: on
# two cores, one busy core slows training many-fold. A short spin keeps the quiet speed and about halves it
# under load (benchmarks/bench_threads.py). libgomp reads this when torch loads it, so it is set here, before
# advfair imports torch; a value the user set wins. It decides how threads wait, never a result.
THREAD_SETTINGS = {"GOMP_SPINCOUNT": "1000"}
for _key, _value in THREAD_SETTINGS.items():
    _os.environ.setdefault(_key, _value)


def evaluate(model, **kwargs):
    """The class-wise report of any model on a test set (see `advfair.api.evaluate`)."""
    from .api import evaluate as _evaluate

    return _evaluate(model, **kwargs)
