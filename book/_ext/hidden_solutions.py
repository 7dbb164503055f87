"""The student edition's hidden solutions (`make book-student`, hide_solutions on).

sphinx-exercise 1.2.1 hides a gated solution by dropping its `solution-start` directive alone: the cells up to
`solution-end` stay on the page, and the orphaned end node stops the HTML writer. With hide_solutions on, this
extension marks where each gated solution starts and removes it whole (start, cells and end) before
sphinx-exercise merges gated solutions. With it off, it changes nothing."""
from __future__ import annotations

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.transforms import SphinxTransform
from sphinx_exercise.directive import SolutionStartDirective
from sphinx_exercise.nodes import solution_end_node


class hidden_solution_start(nodes.Element):
    """Where a hidden gated solution starts: removed with everything up to its end node."""


class SolutionStart(SolutionStartDirective):
    def run(self) -> list[nodes.Node]:
        shown = super().run()  # records the directive for sphinx-exercise's check of the gated structure
        return [hidden_solution_start()] if self.env.app.config.hide_solutions else shown


class RemoveHiddenSolutions(SphinxTransform):
    default_priority = 5  # after sphinx-exercise's structure check (1), before its merge of gated solutions (10)

    def apply(self) -> None:
        for start in list(self.document.findall(hidden_solution_start)):
            siblings = start.parent.children
            first = siblings.index(start)
            end = next((i for i in range(first, len(siblings)) if isinstance(siblings[i], solution_end_node)), None)
            if end is None:
                raise ExtensionError(f"{self.env.docname}: a solution-start without a solution-end after it")
            for child in siblings[first:end + 1]:
                start.parent.remove(child)


def setup(app: Sphinx) -> dict:
    app.setup_extension("sphinx_exercise")
    app.add_directive("solution-start", SolutionStart, override=True)
    app.add_transform(RemoveHiddenSolutions)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
