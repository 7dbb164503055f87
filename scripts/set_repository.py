"""Write the book's repository (`repository.url` and `repository.branch` in _config.yml) into the first cell of
every executed page, the cell that makes a page run outside the repository (Colab, a downloaded notebook).

    python scripts/set_repository.py          # rewrite the cells from _config.yml, then sync the notebooks
    python scripts/set_repository.py --check  # list the pages whose cell differs (exit status 1), change nothing

_config.yml stays the one place the repository is named: tests/test_layout.py runs the check."""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))
from advfair.pages import EXECUTED  # noqa: E402  (pages.py imports nothing)

MARKER = '# %% tags=["remove-cell"]\n'
CELL = '''{marker}# Without the library (Colab, a downloaded notebook): clone the book's repository at the branch the launch button
# opened this page from (its head, not a pinned commit), install its library and run from its book/ folder, where
# the committed results and weights are. Where the library is installed (`make env`) it does nothing.
def _run_outside_repository(url: str, branch: str) -> None:
    import importlib.util, os, pathlib, subprocess, sys
    if importlib.util.find_spec("advfair") is not None or pathlib.Path("../lib/advfair").is_dir():
        return
    repo = pathlib.Path.home() / "advfair"
    if not repo.is_dir():
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--branch", branch, url, str(repo)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", str(repo)], check=True)
    sys.path.insert(0, str(repo / "lib"))
    os.chdir(repo / "book")


_run_outside_repository({url!r}, {branch!r})
del _run_outside_repository

'''
HEADER_END = re.compile(r"\A# ---\n.*?\n# ---\n\n", re.S)


def repository(config: Path = REPO / "_config.yml") -> tuple[str, str]:
    """(url, branch) of the book's repository, from _config.yml."""
    entry = yaml.safe_load(config.read_text())["repository"]
    return entry["url"], entry.get("branch", "main")


def expected_cell() -> str:
    url, branch = repository()
    return CELL.format(marker=MARKER, url=url, branch=branch)


def split(text: str) -> tuple[str, str, str]:
    """(jupytext header, the install cell or "", the rest) of a page's py:percent script."""
    header = HEADER_END.match(text)
    if header is None:
        raise ValueError("no jupytext header")
    body = text[header.end():]
    if not body.startswith(MARKER):
        return header.group(0), "", body
    end = body.index("\n# %%", len(MARKER)) + 1
    return header.group(0), body[:end], body[end:]


def stale_pages() -> list[str]:
    """The executed pages whose script's first cell is not the install cell for _config.yml's repository."""
    cell = expected_cell()
    return [p for p in EXECUTED if split((REPO / "book" / f"{p}.py").read_text())[1] != cell]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only list the pages whose cell differs")
    stale = stale_pages()
    if parser.parse_args().check:
        for page in stale:
            print(f"book/{page}.py: its first cell is not the install cell for _config.yml's repository")
        return 1 if stale else 0
    for page in stale:
        script = REPO / "book" / f"{page}.py"
        header, _, rest = split(script.read_text())
        script.write_text(header + expected_cell() + rest)
        subprocess.run([sys.executable, "-m", "jupytext", "--quiet", "--sync", str(script)], check=True)
    print(f"rewrote {len(stale)} page(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
