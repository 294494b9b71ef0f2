"""A `chapter-times` directive: how long each chapter took to run.

Every chapter is committed executed, and the executor (nbclient, behind
`make execute`) records when each cell started and finished in the cell's
metadata. This directive reads those stamps at build time and renders a
table, so the figures in the book always belong to the stored outputs.

Usage in a MyST page::

    ```{chapter-times}
    ```

and, for one figure in the prose, a role that rounds to minutes:
{chapter-time}`notebooks/06_regularisation` (one chapter) or
{chapter-time}`all` (every chapter) renders as "19 minutes".
"""
from datetime import datetime
from pathlib import Path

import nbformat
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective


def run_time(path):
    """Seconds the code cells ran (summed, so idle time between cells run
    by hand does not count), or None when a code cell has no timing."""
    nb = nbformat.read(path, as_version=4)
    seconds = 0.0
    for cell in nb.cells:
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        stamps = cell.metadata.get("execution", {})
        if "iopub.status.busy" not in stamps:
            return None
        start = datetime.fromisoformat(stamps["iopub.status.busy"])
        end = datetime.fromisoformat(stamps["shell.execute_reply"])
        seconds += (end - start).total_seconds()
    return seconds


def format_seconds(seconds):
    """12 s, 3 min 05 s."""
    if seconds is None:
        return "not recorded"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


class ChapterTimes(SphinxDirective):
    """Table of the notebooks under notebooks/ and their stored run time."""

    def run(self):
        docnames = chapter_docnames(self.env)
        if not docnames:
            return [nodes.paragraph(text="No chapters have been built yet.")]
        lines = ["| Chapter | Run time |", "|---|--:|"]
        total = 0.0
        for name in docnames:
            path = Path(self.env.doc2path(name))
            self.env.note_dependency(str(path))
            seconds = run_time(path)
            total = None if seconds is None or total is None else total + seconds
            lines.append(f"| {{doc}}`/{name}` | {format_seconds(seconds)} |")
        lines.append(f"| **All chapters** | **{format_seconds(total)}** |")
        container = nodes.container()
        self.state.nested_parse(StringList(lines), self.content_offset,
                                container)
        return container.children


def chapter_docnames(env):
    return sorted(
        name for name in env.found_docs
        if name.startswith("notebooks/")
        and Path(env.doc2path(name)).suffix == ".ipynb")


def format_minutes(seconds):
    """'19 minutes', '1 minute', 'under a minute'."""
    if seconds is None:
        return "(not recorded)"
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def chapter_time_role(name, rawtext, text, lineno, inliner,
                      options=None, content=None):
    """{chapter-time}`notebooks/NN_name` or {chapter-time}`all`."""
    env = inliner.document.settings.env
    target = text.strip()
    docnames = chapter_docnames(env) if target == "all" else [target]
    total = 0.0
    for docname in docnames:
        if docname not in env.found_docs:
            message = inliner.reporter.error(
                f"chapter-time: no chapter {docname!r}", line=lineno)
            return [inliner.problematic(rawtext, rawtext, message)], [message]
        path = Path(env.doc2path(docname))
        env.note_dependency(str(path))
        seconds = run_time(path)
        total = None if seconds is None or total is None else total + seconds
    return [nodes.Text(format_minutes(total))], []


def setup(app):
    app.add_directive("chapter-times", ChapterTimes)
    app.add_role("chapter-time", chapter_time_role)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
