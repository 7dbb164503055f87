"""Where and when a result was produced: the commit, the machine kind (what decides a CPU run's floats) and
the environment record every results JSON carries."""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

import numpy as np
import torch

from . import distributed


def _head() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# The commit of the code this process runs: read when the library is imported, not when a result is written, as
# a long run outlives the commits made beside it.
_COMMIT = _head()


def git_commit() -> str | None:
    return _COMMIT


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_kind() -> dict:
    """What decides the floats of a CPU run: the CPU, the kernels torch and oneDNN pick for it, the thread
    count and the library versions. Two runs with equal machine kinds reproduce each other bit for bit."""
    return {
        "cpu": cpu_model(), "machine": platform.machine(),
        "aten_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA"),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "numpy": np.__version__,
    }


def environment(device: torch.device) -> dict:
    """Where and when a result was produced (recorded in every results JSON)."""
    return {
        "python": platform.python_version(), "platform": platform.platform(), "device": str(device),
        "processes": distributed.world_size(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "machine_kind": machine_kind(), "commit": git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
