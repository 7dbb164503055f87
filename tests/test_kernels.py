"""Nothing the book renders depends on which BLAS or SIMD kernel the CPU gets.

numpy hands float matrix products to OpenBLAS, which picks its kernel by CPU (SkylakeX on AVX-512 machines,
Haswell on AVX2 ones, ...), and numpy's own loops dispatch on the CPU's SIMD features. Neither is reached by
ATEN_CPU_CAPABILITY or ONEDNN_MAX_CPU_ISA. Both are forced here, each in a fresh process (they are read when
numpy loads): OPENBLAS_CORETYPE for every kernel this CPU can run, and NPY_DISABLE_CPU_FEATURES down to
numpy's baseline.

- The statistics (class-wise reports, paired bootstrap intervals, rank statistics, exact tests) of fixed
  outcomes must come out bit for bit the same under every setting (fast: a unit test).
- The nbval replay of every page on the committed results must pass under every setting, as it does with the
  CPU's own kernels (`make test` runs it: marker `kernels`, one replay per core at a time). A replay takes about
  100 s, so numpy's baseline is forced in the same process as the lowest OpenBLAS kernel (two libraries, two
  knobs): every setting is replayed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# OpenBLAS core types and the CPU flags each one needs (a forced kernel the CPU lacks would crash).
CORETYPES = {"Nehalem": {"sse4_2"}, "Sandybridge": {"avx"}, "Haswell": {"avx2", "fma"},
             "SkylakeX": {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"}}


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return next((set(line.split(":", 1)[1].split()) for line in text.splitlines() if line.startswith("flags")), set())


def numpy_dispatch_targets() -> list[str]:
    """numpy's dispatch targets above its baseline that this CPU has (disabling them all gives the baseline)."""
    code = ("from numpy._core._multiarray_umath import __cpu_dispatch__ as d, __cpu_features__ as f;"
            "print(' '.join(t for t in d if f.get(t)))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def kernel_settings() -> dict[str, dict[str, str]]:
    """{label: environment} of every BLAS and SIMD setting this CPU can run."""
    flags = cpu_flags()
    settings = {f"OPENBLAS_CORETYPE={name}": {"OPENBLAS_CORETYPE": name}
                for name, needs in CORETYPES.items() if needs <= flags}
    targets = numpy_dispatch_targets()
    if targets:
        settings["NPY_DISABLE_CPU_FEATURES (numpy baseline)"] = {"NPY_DISABLE_CPU_FEATURES": " ".join(targets)}
    return settings


SETTINGS = kernel_settings()


def replay_settings() -> dict[str, dict[str, str]]:
    """The settings of the page replay, each a process of about 100 s: every OpenBLAS kernel this CPU can run, with
    numpy's baseline forced in the same process as the lowest of them (the statistics test above checks each
    setting on its own; two knobs read by different libraries, so one run exercises both)."""
    blas = {label: env for label, env in SETTINGS.items() if label.startswith("OPENBLAS")}
    numpy_base = {label: env for label, env in SETTINGS.items() if not label.startswith("OPENBLAS")}
    if not blas or not numpy_base:
        return {**blas, **numpy_base}
    lowest, rest = next(iter(blas)), dict(list(blas.items())[1:])
    np_label, np_env = " + ".join(numpy_base), {k: v for env in numpy_base.values() for k, v in env.items()}
    return {f"{lowest} + {np_label}": {**blas[lowest], **np_env}, **rest}


# Statistics of fixed outcomes on the book's shapes: 10 classes of 200 points, several attacks, 1000 resamples.
STATISTICS = r"""
import json
import numpy as np
from advfair.evaluation import classwise_report, group_report, head_middle_tail, mcnemar, paired_difference
from advfair.evaluation.metrics import permutation_spearman
from advfair.evaluation.paired import mean_estimate, nsd, paired_statistic, proportion_estimate, sd, worst
rng = np.random.default_rng(7)
y = np.repeat(np.arange(10), 200)
skill = rng.uniform(0.05, 0.9, 10)
preds = {name: np.where(rng.random(len(y)) < skill[y] * f, y, (y + 1 + rng.integers(0, 9, len(y))) % 10)
         for name, f in (("clean", 1.0), ("pgd", 0.6), ("cw", 0.55), ("aa", 0.5))}
names = [f"c{i}" for i in range(10)]
report = classwise_report(y, preds, names, n_boot=1000, seed=3)
a, b = preds["pgd"] == y, preds["cw"] == y
out = {
    "report": report,
    "groups": group_report(y, {"pgd": a, "cw": b}, head_middle_tail(10), num_classes=10, n_boot=1000, seed=1),
    "diff": [paired_difference(y, a, b, s, num_classes=10, seed=2).to_json() for s in (worst, sd, nsd)],
    "ratio": paired_statistic(y, [a, b], lambda u, v: nsd(v) / nsd(u), num_classes=10, seed=5).to_json(),
    "mean": mean_estimate(y, rng.normal(size=len(y))).to_json(),
    "mcnemar": mcnemar(a, b), "proportion": proportion_estimate(37, 200).to_json(),
    "permutation": permutation_spearman(skill, rng.normal(size=10), n_perm=2000, seed=4),
}
print(json.dumps(out).encode().hex())
"""


def run_statistics(env: dict[str, str]) -> str:
    run = subprocess.run([sys.executable, "-c", STATISTICS], env={**os.environ, **env}, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout.strip()


def test_statistics_are_the_same_bits_under_every_blas_and_simd_kernel():
    reference = run_statistics({})
    assert json.loads(bytes.fromhex(reference))["report"]["attacks"]["pgd"]["ci"]["worst"]  # it computed something
    differ = [label for label, env in SETTINGS.items() if run_statistics(env) != reference]
    assert not differ, f"the statistics differ from the CPU's own kernels under {differ}"


def test_a_float_matrix_product_would_have_been_caught():
    """The check can fail: the per-class means as the float product the book used before differ between
    OpenBLAS kernels on this CPU (when it can run two that round differently)."""
    code = ("import numpy as np; r = np.random.default_rng(0); y = r.integers(0, 10, 2000);"
            "h = (r.random((1000, 2000)) < 0.5).astype(float) @ (np.eye(10)[y] / np.bincount(y));"
            "print(h.tobytes().hex()[:4000], h.sum().hex())")
    kinds = [env for label, env in SETTINGS.items() if label.startswith("OPENBLAS")]
    if len(kinds) < 2:
        pytest.skip("this CPU runs fewer than two OpenBLAS kernels")
    outputs = {subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True,
                              check=True).stdout for env in kinds}
    if len(outputs) == 1:
        pytest.skip("every OpenBLAS kernel this CPU runs rounds this product alike")
    assert len(outputs) > 1


def test_the_replay_settings_cover_every_setting():
    covered = [set(env.items()) for env in replay_settings().values()]
    assert all(any(set(env.items()) <= c for c in covered) for env in SETTINGS.values())
    assert len(replay_settings()) <= len(SETTINGS)


def replay(label: str) -> str | None:
    """The nbval replay of every page under one setting, in a fresh process on one thread: None if it passes,
    else the tail of its report. The replay trains nothing and its statistics come from integer counts, so the
    thread count does not enter what it renders; one thread each lets two settings run side by side."""
    pages = sorted(str(p.relative_to(REPO)) for p in (REPO / "book").glob("*.ipynb"))
    env = {**os.environ, **replay_settings()[label], "ADVFAIR_REPLAY_DIR": str(REPO / "book" / "results"),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", *pages,
                          "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg"],
                         cwd=REPO, env=env, capture_output=True, text=True)
    return None if run.returncode == 0 else run.stdout[-6000:]


@pytest.mark.kernels
def test_the_replay_is_the_committed_book_under_every_kernel():
    # one replay per core at a time: the settings are independent processes (CI's time is the budget here)
    with ThreadPoolExecutor(max_workers=max(1, min(len(os.sched_getaffinity(0)), 4))) as pool:
        reports = dict(zip(replay_settings(), pool.map(replay, replay_settings())))
    failed = {label: report for label, report in reports.items() if report is not None}
    assert not failed, "the replay differs from the committed book under " + "\n\n".join(
        f"{label}:\n{report}" for label, report in failed.items())
