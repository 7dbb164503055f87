"""The library's layout rules (design/BOOK.md): small modules, and one package per chapter with the same parts."""
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib" / "advfair"
MAX_LINES = 330  # "no module is over ~300 lines"
CHAPTER_PARTS = {"__init__.py", "config.py", "methods.py", "pipeline.py", "report.py", "claims.py"}


@pytest.mark.parametrize("module", sorted(LIB.rglob("*.py")), ids=lambda p: str(p.relative_to(LIB)))
def test_no_module_is_long(module):
    assert len(module.read_text().splitlines()) <= MAX_LINES


def test_every_chapter_package_has_the_same_parts():
    from advfair.experiments import CHAPTERS

    for name in CHAPTERS:
        files = {p.name for p in (LIB / "experiments" / name).glob("*.py")}
        assert CHAPTER_PARTS <= files, f"{name} lacks {sorted(CHAPTER_PARTS - files)}"
