"""A `trained-spreads` directive: how far each chapter's trained numbers move.

Each chapter glues its headline spreads over seeds under names that start
with ``spread_`` (``glue("spread_ch2_mlp", "the MLP's test accuracy over 5
seeds: ≈98.21% ± 0.08", display=False)``). This directive collects them
from the stored notebooks at build time, so the Running page quotes the
same numbers the chapters printed.

Usage in a MyST page::

    ```{trained-spreads}
    ```
"""
from ast import literal_eval
from pathlib import Path

import nbformat
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

PREFIX = "spread_"
MIME = "application/papermill.record/text/plain"


def glued_spreads(path):
    """The (name, text) pairs a notebook glued under ``spread_`` names."""
    nb = nbformat.read(path, as_version=4)
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name and name.startswith(PREFIX):
                data = output.get("data", {})
                text = data.get(MIME, data.get("text/plain", ""))
                try:
                    text = literal_eval(text)
                except (SyntaxError, ValueError):
                    pass
                found.append((name, str(text)))
    return found


class TrainedSpreads(SphinxDirective):
    """A list, chapter by chapter, of the spreads the chapters glued."""

    def run(self):
        docnames = sorted(
            name for name in self.env.found_docs
            if name.startswith("notebooks/")
            and Path(self.env.doc2path(name)).suffix == ".ipynb")
        lines = []
        for name in docnames:
            path = Path(self.env.doc2path(name))
            self.env.note_dependency(str(path))
            spreads = glued_spreads(path)
            if spreads:
                lines.append(f"- {{doc}}`/{name}`:")
                lines += [f"  - {text}" for _, text in spreads]
        if not lines:
            return [nodes.paragraph(
                text="No chapter has measured a spread over seeds yet.")]
        container = nodes.container()
        self.state.nested_parse(StringList(lines), self.content_offset,
                                container)
        return container.children


def setup(app):
    app.add_directive("trained-spreads", TrainedSpreads)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
