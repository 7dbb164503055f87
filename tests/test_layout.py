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


def _imports() -> dict[str, set[str]]:
    """module -> the library modules it imports (relative imports, at any depth of the module)."""
    import ast

    def name(path: Path) -> str:
        parts = list(path.relative_to(LIB.parent).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {name(p): p for p in LIB.rglob("*.py")}
    graph = {}
    for module, path in modules.items():
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
                deps |= {d for d in (base, *(f"{base}.{a.name}" for a in node.names)) if d in modules}
        # a package's own submodules are its parts, not a dependency
        graph[module] = {d for d in deps if d != module and not d.startswith(module + ".")}
    return graph


def test_no_import_circles_and_the_flow_goes_one_way():
    graph = _imports()
    seen: dict[str, int] = {}

    def visit(module: str, path: tuple[str, ...]) -> None:
        if seen.get(module) == 1:
            raise AssertionError("import circle: " + " -> ".join((*path, module)))
        if module in seen:
            return
        seen[module] = 1
        for dep in sorted(graph[module]):
            visit(dep, (*path, module))
        seen[module] = 2

    for module in sorted(graph):
        visit(module, ())
    lower = ("advfair.distributed", "advfair.autoattack", "advfair.data", "advfair.models", "advfair.attacks",
             "advfair.objectives", "advfair.fingerprint", "advfair.trainer", "advfair.cache", "advfair.weights", "advfair.training", "advfair.files", "advfair.config", "advfair.api", "advfair.provenance", "advfair.pages",
             "advfair.parser", "advfair.defaults")
    upper = ("advfair.evaluation", "advfair.selection", "advfair.methods", "advfair.experiments")
    for module, deps in graph.items():
        if module.startswith(lower):
            allowed = ("advfair.evaluation",) if module == "advfair.api" else ()
            wrong = {d for d in deps if d.startswith(upper) and not d.startswith(allowed)}
            assert not wrong, f"{module} imports the layers above it: {sorted(wrong)}"


def test_the_help_and_the_api_import_only_what_they_need():
    import subprocess
    import sys

    code = ("import sys; sys.argv = ['advfair', '--help']\nimport runpy\ntry:\n    runpy.run_module('advfair', "
            "run_name='__main__')\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules)")
    help_run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert help_run.stdout.strip().splitlines()[-1] == "False"
    code = ("import sys, advfair.api; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pandas', 'matplotlib', 'seaborn') or m.startswith('advfair.experiments')))")
    api_run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert api_run.stdout.strip() == "[]"
