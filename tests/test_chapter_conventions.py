"""What every chapter does the same way, read from the stored notebooks.

- Every static figure is a numbered figure with a caption, a name to refer
  to it by, and alt text that says what it shows (MyST-NB reads them from
  the code cell's metadata: ``mystnb.figure.caption``, ``.name`` and
  ``mystnb.image.alt``). Without alt text the page gives the image its
  hashed file name, which is all a screen reader would say.
- Exercises come first, as a numbered list; then one dropdown per
  exercise, in order, titled "Solution to exercise N". Code that the
  chapter runs for a solution sits right after that dropdown, in a toggle
  titled "Solution to exercise N: the code" (or is removed from the page),
  never under a generic "Show code cell content" before the solution.
- The first cell gives the chapter's measured running time with the
  ``{chapter-time}`` role, the same source as the Running page's table, and
  no hand-written estimate contradicts it.
"""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTION = re.compile(r"^(`{3,4})\{admonition\} (Solution[^\n]*)\n")
HASHED = re.compile(r"[0-9a-f]{16,}|\.(png|jpe?g|svg|gif)$", re.IGNORECASE)


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def source(cell):
    return "".join(cell["source"])


def figure_cells(nb):
    return [cell for cell in nb["cells"] if cell["cell_type"] == "code"
            and any("image/png" in output.get("data", {})
                    for output in cell.get("outputs", []))]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_figure_has_a_caption_a_name_and_alt_text(path):
    problems = []
    for cell in figure_cells(load(path)):
        meta = cell["metadata"].get("mystnb", {})
        figure, image = meta.get("figure", {}), meta.get("image", {})
        where = f"cell {cell.get('id')}"
        alt = image.get("alt", "")
        if len(alt.split()) < 8 or HASHED.search(alt.strip()):
            problems.append(f"{where}: no alt text that says what it shows "
                            f"(mystnb.image.alt): {alt!r}")
        if len(figure.get("caption", "").split()) < 4:
            problems.append(f"{where}: no caption (mystnb.figure.caption)")
        chapter = int(path.stem[:2])
        if not figure.get("name", "").startswith(f"fig-ch{chapter}-"):
            problems.append(f"{where}: no name fig-ch{chapter}-... "
                            "(mystnb.figure.name)")
    assert not problems, "\n".join(problems)


def test_figure_names_are_unique_across_the_book():
    names = [cell["metadata"].get("mystnb", {}).get("figure", {}).get("name")
             for path in CHAPTERS for cell in figure_cells(load(path))]
    names = [name for name in names if name]
    assert len(names) == len(set(names)), sorted(
        name for name in set(names) if names.count(name) > 1)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_exercises_then_solutions_in_order(path):
    cells = load(path)["cells"]
    start = next((i for i, cell in enumerate(cells)
                  if cell["cell_type"] == "markdown"
                  and "## Exercises" in source(cell)), None)
    assert start is not None, "no ## Exercises section"
    statements = source(cells[start]).split("## Exercises", 1)[1]
    solutions, problems = [], []
    for cell in cells[start + 1:]:
        text = source(cell)
        match = SOLUTION.match(text)
        if cell["cell_type"] == "markdown" and match:
            solutions.append(match.group(2))
            if ":class: dropdown" not in text.split("\n", 2)[1]:
                problems.append(f"{match.group(2)!r} is not a dropdown")
        elif cell["cell_type"] == "markdown":
            if solutions:
                problems.append(f"text after the first solution: {text[:60]!r}")
            statements += "\n" + text
        else:                                  # a code cell
            tags = cell["metadata"].get("tags", [])
            prompt = cell["metadata"].get("mystnb", {}).get(
                "code_prompt_show", "")
            if "remove-cell" in tags:
                continue
            if "hide-cell" not in tags or not solutions or prompt != (
                    f"Solution to exercise {len(solutions)}: the code"):
                problems.append(
                    f"code cell {cell.get('id')} shows outside its solution: "
                    "tag it hide-cell, after the dropdown of its exercise, "
                    "with mystnb.code_prompt_show 'Solution to exercise N: "
                    "the code', or remove-cell")
    numbers = [int(n) for n in re.findall(r"(?m)^(\d+)\. \*\*", statements)]
    assert numbers == list(range(1, len(numbers) + 1)) and numbers, numbers
    expected = [f"Solution to exercise {n}" for n in numbers]
    assert solutions == expected, (solutions, problems)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_measured_time_at_the_top(path):
    first = source(load(path)["cells"][0])
    assert f"{{chapter-time}}`notebooks/{path.stem}`" in first
    estimate = re.compile(r"(a few|about \d+|several) minutes", re.IGNORECASE)
    intro = first.split("**What you will build", 1)[0]
    assert not estimate.search(first.replace(intro, "")), (
        "a hand-written running time beside the measured one")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_figures_keep_their_proportions_when_scaled(path):
    """A stored figure gives its display width only. MyST-NB writes the
    width and height of an output's metadata into the img's style, so a
    figure with both, scaled down to a narrow column or a phone, keeps its
    height and is squashed. (nnlib.plots gives the width only; re-execute a
    chapter whose figures still carry a height.)"""
    squashed = [cell.get("id") for cell in figure_cells(load(path))
                for output in cell["outputs"]
                if "height" in output.get("metadata", {}).get("image/png", {})]
    assert not squashed, f"figures with a fixed height, re-execute: {squashed}"
