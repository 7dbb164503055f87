"""Every chapter notebook is paired with a py:percent script holding the same cells (jupytext.toml),
and has exactly one papermill `parameters` cell."""

from pathlib import Path

import jupytext
import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
STEMS = sorted({p.stem for p in BOOK.glob("*.ipynb")} | {p.stem for p in BOOK.glob("*.py")})


def _cells(path):
    return [(cell.cell_type, cell.source) for cell in jupytext.read(path).cells]


@pytest.mark.parametrize("stem", STEMS)
def test_notebook_and_script_hold_the_same_cells(stem):
    notebook, script = BOOK / f"{stem}.ipynb", BOOK / f"{stem}.py"
    missing = [p.name for p in (notebook, script) if not p.exists()]
    assert not missing, f"unpaired: {missing} missing; run `jupytext --sync book/{stem}.*`"
    assert _cells(notebook) == _cells(script), f"{stem}: run `jupytext --sync` to re-pair"


@pytest.mark.parametrize("stem", sorted(p.stem for p in BOOK.glob("*.ipynb")))
def test_notebook_is_paired_and_parameterised(stem):
    notebook = jupytext.read(BOOK / f"{stem}.ipynb")
    assert notebook.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent"
    tagged = [c for c in notebook.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{stem}: {len(tagged)} code cells tagged 'parameters', need exactly one"
