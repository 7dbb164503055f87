"""The README's two set-up commands are the ones automation runs: the Pages workflow builds the book
with the README's book command, and .ci/run runs the README's test command."""

import re
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _setup_commands():
    """The ```bash blocks under '## Set up' in README.md: (book command, test command)."""
    readme = (REPO / "README.md").read_text()
    section = re.search(r"^## Set up\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert section, "README.md has no '## Set up' section"
    blocks = [b.strip() for b in re.findall(r"^```bash\n(.*?)^```", section.group(1), re.M | re.S)]
    assert len(blocks) == 2, f"'## Set up' must hold exactly two bash blocks (book, test), found {blocks}"
    return blocks


def test_pages_workflow_builds_with_the_readme_book_command():
    book_command, _ = _setup_commands()
    workflow = yaml.safe_load((REPO / ".github/workflows/book.yml").read_text())
    steps = [step for job in workflow["jobs"].values() for step in job.get("steps", [])]
    (build,) = [step for step in steps if step.get("name") == "Build the book"]
    assert build["run"].strip() == book_command


def test_ci_runs_the_readme_test_command():
    _, test_command = _setup_commands()
    lines = [line.strip() for line in (REPO / ".ci/run").read_text().splitlines()]
    assert test_command in lines


def test_every_executed_page_is_built_checked_and_in_the_table_of_contents():
    """One page registry (advfair.pages): make book executes its pages (the Makefile prints them with the
    registry itself), make test checks them, the CLI runs its chapters; _toc.yml shows every page, the summary
    first (it is executed last: it reads the others' results), and the README names every chapter."""
    from advfair import pages
    from advfair.experiments import CHAPTERS, reproduce

    make = subprocess.run(["make", "-s", "--no-print-directory", "-f", "-", "pages"], cwd=REPO, check=True, text=True,
                          capture_output=True, input=(REPO / "Makefile").read_text() + "\npages:\n\t@echo $(PAGES)\n")
    assert make.stdout.split() == [pages.notebook(p) for p in pages.EXECUTED]
    assert list(reproduce.PAGES) == [f"{p}_cpu" for p in pages.CHECKED]
    assert list(CHAPTERS) == list(pages.CHAPTERS)
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    assert [entry["file"] for entry in toc["chapters"]] == [f"book/{p}" for p in pages.TOC]
    assert set(pages.SHOWN) == set(pages.EXECUTED)
    assert all((REPO / f"book/{p}.md").is_file() and not (REPO / f"book/{p}.ipynb").exists() for p in pages.GUIDES)
    readme = (REPO / "README.md").read_text()
    assert [p for p in pages.CHAPTERS if f"`{p}`" not in readme] == []
