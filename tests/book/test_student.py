"""The student edition (`make book-student`) holds every exercise of the book and none of its solutions' text, and
no copy of the notebooks (which hold the solutions)."""
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytestmark = pytest.mark.book

REPO = Path(__file__).resolve().parents[2]
BOOK, STUDENT = REPO / "_build" / "html", REPO / "_build" / "student" / "_build" / "html"


class _Blocks(HTMLParser):
    """The text of every <div> whose classes include `name`, and of the page (styles and scripts left out)."""

    def __init__(self, name: str):
        super().__init__()
        self.name, self.depth, self.blocks, self.page, self.outside, self.code = name, [], [], [], [], 0

    def handle_starttag(self, tag, attrs):
        self.code += tag in ("style", "script")
        if tag == "div":
            inside = bool(self.depth) and self.depth[-1] is not None
            opens = self.name in (dict(attrs).get("class") or "").split()
            self.depth.append(len(self.blocks) if opens and not inside else self.depth[-1] if inside else None)
            if opens and not inside:
                self.blocks.append([])

    def handle_endtag(self, tag):
        self.code -= tag in ("style", "script")
        if tag == "div" and self.depth:
            self.depth.pop()

    def handle_data(self, data):
        if self.code:  # a table's CSS, the theme's scripts: the same on every page
            return
        self.page.append(data)
        if self.depth and self.depth[-1] is not None:
            self.blocks[self.depth[-1]].append(data)
        else:
            self.outside.append(data)


def _read(path: Path, name: str) -> tuple[list[str], str, str]:
    """The text of each `name` block, of the whole page, and of the page outside those blocks."""
    parser = _Blocks(name)
    parser.feed(path.read_text())
    squash = lambda parts: re.sub(r"\s+", " ", " ".join(parts)).strip()  # noqa: E731
    return [squash(b) for b in parser.blocks], squash(parser.page), squash(parser.outside)


def _pages():
    if not (BOOK / "index.html").exists() or not (STUDENT / "index.html").exists():
        pytest.skip("both editions must be built: `make book` and `make book-student`")
    return sorted(p.relative_to(BOOK) for p in BOOK.rglob("*.html") if "_static" not in p.parts)


def test_the_student_edition_has_every_exercise_and_no_solution_text():
    solved = 0
    for page in _pages():
        solutions, _, shared = _read(BOOK / page, "solution")
        exercises, _, _ = _read(BOOK / page, "exercise")
        student_solutions, student_page, _ = _read(STUDENT / page, "solution")
        student_exercises, _, _ = _read(STUDENT / page, "exercise")
        assert student_exercises == exercises, page
        assert not student_solutions, page
        for solution in solutions:
            solved += 1
            # every sentence of the solution (its prose, code and outputs) is missing from the student page, but for
            # those the page also shows outside its solutions (a claim's label in a solution's table and in the
            # verdict table)
            sentences = [s for s in re.split(r"(?<=[.:])\s", solution.split("Solution to", 1)[-1])
                         if len(s) > 40 and s not in shared]
            assert sentences, solution[:80]
            shown = [s for s in sentences if s in student_page]
            assert not shown, f"{page}: solution text in the student edition: {shown[0][:80]}"
    assert solved, "no solution found in the book: the check would pass vacuously"


def test_the_student_edition_holds_no_notebook():
    _pages()
    assert not list(STUDENT.rglob("*.ipynb")) and not (STUDENT / "_sources").exists()
    assert list(BOOK.rglob("*.ipynb")), "the book's own edition offers its notebooks for download"
