"""requirements.lock and environment.yml must pin exactly the same packages (scripts/lock.sh writes both)."""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _pins(lines):
    pins = {}
    for line in lines:
        name, sep, version = line.partition("==")
        assert sep and version, f"not pinned with '==': {line!r}"
        pins[re.sub(r"[-_.]+", "-", name.strip().lower())] = version.strip()
    return pins


def _lock_pins():
    lines = (REPO / "requirements.lock").read_text().splitlines()
    return _pins(line for line in lines if line.strip() and not line.startswith("#"))


def _conda_env():
    return yaml.safe_load((REPO / "environment.yml").read_text())


def _conda_pip_section():
    (pip_section,) = [dep["pip"] for dep in _conda_env()["dependencies"] if isinstance(dep, dict)]
    return pip_section


def test_lock_is_not_empty():
    assert "torch" in _lock_pins()


def test_conda_env_pins_the_same_versions_as_the_lock():
    pins = _pins(dep for dep in _conda_pip_section() if dep != "-e .")
    lock = _lock_pins()
    differing = {
        name: (lock.get(name), pins.get(name))
        for name in lock.keys() | pins.keys()
        if lock.get(name) != pins.get(name)
    }
    assert not differing, f"package: (requirements.lock, environment.yml) -> {differing}"


def test_conda_env_installs_the_package_and_python_311():
    env = _conda_env()
    assert env["name"] == "advfair"
    assert "python=3.11" in env["dependencies"]
    assert "-e ." in _conda_pip_section()
