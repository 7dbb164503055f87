"""advfair: class-wise robustness and robust fairness in adversarial training.

Flow: data -> models -> attacks -> objectives -> trainer -> evaluation -> experiments -> notebook / CLI.
"""
__version__ = "0.1.0"
