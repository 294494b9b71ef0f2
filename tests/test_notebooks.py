"""What every committed chapter must hold, read from the .ipynb files.

nbval re-runs the chapters and compares their outputs; these checks are the
rules it cannot see: the chapters are executed and in the book, each
training cell leaves exactly one final figure and no widget behind, and the
cells whose output legitimately varies are the only ones nbval skips.
"""
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def code_cells(path):
    return [cell for cell in nbformat.read(path, as_version=4).cells
            if cell.cell_type == "code" and cell.source.strip()]


def trains_live(cell):
    return "LiveView(" in cell.source or "LiveBoard(" in cell.source


def test_every_chapter_is_in_the_table_of_contents():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = {entry["file"] for part in toc["parts"]
              for entry in part["chapters"]}
    assert CHAPTERS, "no chapters found in notebooks/"
    for path in CHAPTERS:
        assert f"notebooks/{path.stem}" in listed, path.name


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_is_executed_in_order(path):
    counts = [cell.execution_count for cell in code_cells(path)]
    assert None not in counts, f"{path.name} has unexecuted cells"
    assert counts == sorted(counts), f"{path.name} was run out of order"
    for cell in code_cells(path):
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"{path.name}: a cell failed: {cell.source[:60]}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_live_training_leaves_one_figure_and_no_widget(path):
    for cell in filter(trains_live, code_cells(path)):
        data = [o.get("data", {}) for o in cell.outputs]
        images = sum("image/png" in d for d in data)
        assert images == 1, (path.name, cell.source[:60], images)
        assert not any(WIDGET_VIEW in d for d in data), cell.source[:60]
        # its output varies (progress, timing), so nbval must skip it
        assert "nbval-ignore-output" in cell.metadata.get("tags", [])


def test_a_chapter_trains_live():
    assert any(trains_live(cell) for path in CHAPTERS
               for cell in code_cells(path))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_says_where_its_numbers_were_computed(path):
    """Each chapter shows nnlib.report's note: NumPy, BLAS, kernel, threads."""
    notes = [cell for cell in code_cells(path)
             if "ComputedWith()" in cell.source]
    assert len(notes) == 1, f"{path.name}: one report.ComputedWith() cell"
    text = "".join(o.get("data", {}).get("text/plain", "")
                   for o in notes[0].outputs)
    assert "Computed with NumPy" in text and " kernel, " in text, text


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_glued_name_in_the_prose_was_glued(path):
    """A {glue:text}`name` in a markdown cell needs a glue("name", ...) in
    the stored outputs, or the book would show an error in its place."""
    import re

    nb = nbformat.read(path, as_version=4)
    used = {m for cell in nb.cells if cell.cell_type == "markdown"
            for m in re.findall(r"\{glue(?::\w+)?\}`([^`:]+)", cell.source)}
    glued = {o.get("metadata", {}).get("scrapbook", {}).get("name")
             for cell in nb.cells if cell.cell_type == "code"
             for o in cell.get("outputs", [])}
    assert used <= glued, f"{path.name}: never glued: {sorted(used - glued)}"
