"""Defaults that the command line's help shows, kept apart so that `python -m advfair --help` imports no torch."""

# The attacks `advfair evaluate` runs unless told otherwise.
DEFAULT_ATTACKS = ("fgsm", "pgd20", "cw20", "aa")
# Named CPU kernel sets a stability run can add (each run in a fresh process with these variables set).
KERNELS = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}
