"""The teaching kit's notebook side: every executed page starts with the cell that lets it run outside the
repository (Colab, a download), naming the repository _config.yml names, and that cell does nothing inside it."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("set_repository", REPO / "scripts" / "set_repository.py")
set_repository = importlib.util.module_from_spec(spec)
spec.loader.exec_module(set_repository)


def _cell() -> str:
    return set_repository.expected_cell().removeprefix(set_repository.MARKER)


def test_every_page_starts_with_the_install_cell_for_the_configured_repository():
    assert set_repository.stale_pages() == [], "run `python scripts/set_repository.py`"


@pytest.mark.parametrize("where", ["book", "repository root", "elsewhere"])
def test_the_install_cell_does_nothing_where_the_library_is_installed(where, monkeypatch, tmp_path):
    cwd = {"book": REPO / "book", "repository root": REPO, "elsewhere": tmp_path}[where]
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"ran {a}"))
    exec(_cell(), {})
    assert Path.cwd() == cwd


def test_outside_the_repository_the_cell_clones_installs_and_moves_to_the_book(monkeypatch, tmp_path):
    url, branch = set_repository.repository()
    calls = []

    def run(command, check):
        calls.append(command)
        if command[:2] == ["git", "clone"]:
            (Path(command[-1]) / "book").mkdir(parents=True)

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(subprocess, "run", run)
    find_spec = importlib.util.find_spec  # the library not installed, as in a fresh Colab runtime
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "advfair" else find_spec(name, *a))
    monkeypatch.setattr(sys, "path", list(sys.path))
    namespace = {}
    exec(_cell(), namespace)
    clone = tmp_path / "advfair"
    assert calls == [["git", "clone", "--quiet", "--depth", "1", "--branch", branch, url, str(clone)],
                     [sys.executable, "-m", "pip", "install", "--quiet", "-e", str(clone)]]
    assert Path.cwd() == clone / "book" and sys.path[0] == str(clone / "lib")
    assert not [k for k in namespace if not k.startswith("__")]  # no name a papermill parameter could collide with
    calls.clear()
    monkeypatch.chdir(tmp_path)
    exec(_cell(), {})  # a second run reuses the clone
    assert [c[:2] for c in calls] == [[sys.executable, "-m"]]


def _page_exercises(page: str) -> list[tuple[str, bool]]:
    """(title, has a solution) of every exercise of a page, in order."""
    import re

    text = (REPO / "book" / f"{page}.py").read_text()
    solved = set(re.findall(r"^# `{3,4}\{solution-start\} (\S+)$", text, re.M))
    return [(title, label in solved)
            for title, label in re.findall(r"^# `{3,4}\{exercise\} (.+)\n# :label: (\S+)$", text, re.M)]


def test_the_course_guide_lists_every_exercise_and_marks_those_with_a_solution():
    import re

    sys.path.insert(0, str(REPO / "lib"))
    from advfair.pages import CHAPTERS, TOOLS

    rows = re.findall(r"^\| \{doc\}`(\w+)` \| (\d+)\. \*\*(.+?)\.?\*\* \| [^|]+ \| (✓?) *\|$",
                      (REPO / "book" / "course.md").read_text(), re.M)
    listed = {}
    for page, number, title, mark in rows:
        listed.setdefault(page, []).append((int(number), title, mark == "✓"))
    for page in (*CHAPTERS, *TOOLS):
        exercises = _page_exercises(page)
        assert len(exercises) >= 3, page
        assert listed.get(page) == [(i, t, s) for i, (t, s) in enumerate(exercises, 1)], page
        assert any(s for _, s in exercises) or page in TOOLS, f"{page}: no exercise with a solution"


def _exercise_overrides(page: str) -> list[dict]:
    """Every config override an exercise of `page` names, as a dict literal ({"field": value, ...}), with the epoch
    count the same exercise sets as a page parameter (`epochs=N`)."""
    import ast
    import re

    text = (REPO / "book" / f"{page}.py").read_text()
    out = []
    for block in re.findall(r"^# `{3,4}\{exercise\}.*?^# `{3,4}$", text, re.M | re.S):
        body = re.sub(r"^# ?", "", block, flags=re.M).replace("\n", " ")
        epochs = {"epochs": int(e) for e in re.findall(r"`epochs=(\d+)`", body)}
        out += [{**epochs, **ast.literal_eval(d)} for d in re.findall(r'\{"[a-z_]+":[^{}]*\}', body)]
    return out


def test_every_override_an_exercise_names_is_a_valid_config_at_the_smoke_tier():
    sys.path.insert(0, str(REPO / "lib"))
    from advfair.experiments import CHAPTERS

    checked = 0
    for name, chapter in CHAPTERS.items():
        for overrides in _exercise_overrides(name):
            chapter.make_config("cpu", **overrides)  # raises ConfigError naming a field or value that is not allowed
            checked += 1
    assert checked >= 10, checked
