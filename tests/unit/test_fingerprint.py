"""advfair.fingerprint and the code versions in every model's cache key: an edited formula, or a bumped version
of the trainer, augmentation, training attacks or model body, changes the key; a comment or a rewrapped line
does not."""
from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from advfair import attacks, data, fingerprint, models, trainer
from advfair.cache import spec_key
from advfair.fingerprint import formula_fingerprint, normalised_source
from advfair.objectives import make_objective
from advfair.trainer import TrainConfig
from advfair.training import code_versions, model_spec_of

LIB = Path(fingerprint.__file__).parent
HELPER = '''
SCALE = {scale}


def inner(z):
    """The inner term."""
    return z * SCALE{inner}
'''
LOSS = '''
from .helper import inner


def loss(model, x, y):
    """A loss of the toy package."""
    return inner(model(x)){outer}
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A package `toyformula` on disk whose files a test rewrites: fingerprint(**edits) imports it afresh."""
    monkeypatch.syspath_prepend(str(tmp_path))
    package = tmp_path / "toyformula"
    package.mkdir()
    (package / "__init__.py").write_text("")

    def fingerprint(scale="2.0", inner="", outer="") -> str:
        (package / "helper.py").write_text(HELPER.format(scale=scale, inner=inner))
        (package / "loss.py").write_text(LOSS.format(outer=outer))
        for name in [m for m in sys.modules if m.startswith("toyformula")]:
            del sys.modules[name]
        importlib.invalidate_caches()
        return formula_fingerprint(importlib.import_module("toyformula.loss").loss, "toyformula")

    yield fingerprint
    for name in [m for m in sys.modules if m.startswith("toyformula")]:
        del sys.modules[name]


def test_the_fingerprint_follows_the_formula_through_its_helpers_and_constants(toy):
    base = toy()
    assert toy() == base  # the same code, imported again
    assert toy(outer="  # a comment", inner="  # another") == base  # comments do not count
    assert toy(outer=" + 0 * (\n        1)") != base  # the loss itself
    assert toy(inner=" + 1") != base  # a helper it reaches by name, in another module
    assert toy(scale="3.0") != base  # a constant the helper reads


def test_layout_and_docstrings_do_not_count():
    def one(a, b):
        """Adds."""
        return (a +
                b)  # sum

    def two(a, b):
        return (a + b)

    assert normalised_source(one).replace("one", "two") == normalised_source(two)


def test_every_objective_key_holds_its_formula_fingerprint():
    attack = {"eps": 8 / 255, "alpha": 2 / 255, "steps": 3}
    pgd_at = make_objective("pgd_at", **attack).cache_spec()
    trades = make_objective("trades", **attack, beta=6.0).cache_spec()
    assert len(pgd_at["formula"]) == 16 and pgd_at["formula"] != trades["formula"]
    assert make_objective("trades", **attack, beta=1.0).cache_spec()["formula"] == trades["formula"]


SPLIT = {"dataset": "cifar10", "seed": 0, "train_per_class": 500}
MODEL = {"name": "small_cnn", "width": 4}


def _key() -> str:
    objective = make_objective("pgd_at", eps=8 / 255, alpha=2 / 255, steps=3)
    return spec_key(model_spec_of(SPLIT, MODEL, objective, TrainConfig(epochs=5)))


@pytest.mark.parametrize("module, name", [(trainer, "VERSION"), (data, "AUGMENTATION_VERSION"),
                                          (attacks, "VERSION")])
def test_bumping_a_code_version_changes_every_key(monkeypatch, module, name):
    before = _key()
    monkeypatch.setattr(module, name, getattr(module, name) + 1)
    assert _key() != before


def test_bumping_a_body_version_changes_only_its_models_keys(monkeypatch):
    before = _key()
    assert code_versions({"name": "preact18"})["body"] == models.BODY_VERSIONS["preact_resnet18"]
    monkeypatch.setitem(models.BODY_VERSIONS, "preact_resnet18", 2)
    assert _key() == before
    monkeypatch.setitem(models.BODY_VERSIONS, "small_cnn", 2)
    assert _key() != before


def test_every_model_body_has_a_version():
    assert set(models.BODY_VERSIONS) == {models.canonical_model(name) for name in models.MODELS}


def _other_pythons() -> list[str]:
    """Interpreters other than this one, of the versions whose tokenizer differs (3.12 splits f-strings)."""
    found = {shutil.which(f"python3.{minor}") for minor in (12, 13)}
    found |= {str(p) for p in Path.home().glob(".pyenv/versions/3.1[23].*/bin/python")}
    # a version manager's shim may name a Python it cannot start: keep the ones that run
    return sorted(p for p in found if p and subprocess.run([p, "-c", "pass"], capture_output=True).returncode == 0)


def test_the_normalised_library_is_the_same_under_every_python_found():
    """A key must not depend on the interpreter: the library's every module normalises to the same tokens under
    the other Pythons this machine has (run without importing advfair, which needs torch)."""
    others = _other_pythons()
    if not others:
        pytest.skip("no Python 3.12 or 3.13 on this machine")
    script = ("import importlib.util, glob, hashlib, sys\n"
              f"spec = importlib.util.spec_from_file_location('fp', {str(Path(fingerprint.__file__))!r})\n"
              "fp = importlib.util.module_from_spec(spec); spec.loader.exec_module(fp)\n"
              "h = hashlib.sha256()\n"
              f"for p in sorted(glob.glob({str(LIB) + '/**/*.py'!r}, recursive=True)):\n"
              "    h.update(fp.normalise(open(p).read()).encode())\n"
              "print(h.hexdigest())\n")
    digests = {python: subprocess.run([python, "-c", script], capture_output=True, text=True, check=True).stdout
               for python in [sys.executable, *others]}
    assert len(set(digests.values())) == 1, digests
