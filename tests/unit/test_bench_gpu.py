"""The GPU benchmark runs (at its smoke size, on the CPU), so a lent GPU runs code that has been run."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_gpu_benchmark_runs_at_smoke_size(tmp_path: Path) -> None:
    out = tmp_path / "bench_gpu.json"
    run = subprocess.run([sys.executable, "bench_gpu.py", "--smoke", "--device", "cpu", "--out", str(out)],
                         cwd=REPO / "benchmarks", capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["smoke"] and results["batch"] == 8 and results["batches"] == 2
    assert set(results["epoch_seconds"]) == {"plain fp32 loop", "advfair"}
    assert all(s > 0 for s in results["epoch_seconds"].values())
    assert "x the plain loop" in run.stdout
