"""What the stored outputs of the chapters show a reader, read from the
.ipynb files: no path of the machine that ran them, and no raw Python
warning.

The book prints what the notebooks stored when they were last executed.
An absolute path there (the MNIST cache under the executing user's home,
a warning headed by the checkout's path to an nnlib module) tells the
reader nothing and shows the developer's machine. A warning such as
"RuntimeWarning: overflow encountered in matmul" printed with nothing
around it reads as a bug. A chapter that means to show a warning catches
it where it arises and says what it means; a cell whose prose does explain
a raw warning line may carry the tag `warning-explained` (absolute paths
are refused there too).

These checks read the stored outputs, so after a fix in the code they pass
only once the chapter has been executed again (`make execute`).
"""
import json
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXPLAINED = "warning-explained"

# An absolute path on a build machine: a home or a scratch folder, or this
# checkout's own folder. The look-behind keeps URLs ("https://x.org/tmp/")
# and paths relative to a home ("~/.cache/...") out.
MACHINE_PATH = re.compile(
    r"(?<![\w.~/:-])("
    r"/root/|/home/[^/\s]+/|/Users/[^/\s]+/|/work/|/tmp/|/var/folders/"
    r"|/private/|[A-Za-z]:\\Users\\"
    + "|" + re.escape(str(ROOT)) + r"(?![\w-])"
    r")")

# A line as Python's warnings module prints it, "file:12: RuntimeWarning:
# message", or a bare "UserWarning: message".
WARNING_LINE = re.compile(r"\b[A-Z]\w*Warning: ")


def output_texts(output):
    """The text a reader may see of one stored output."""
    texts = []
    if output.output_type == "stream":
        texts.append(output.text)
    elif output.output_type == "error":
        texts += [output.ename, output.evalue, *output.traceback]
    for mime, value in output.get("data", {}).items():
        if mime.startswith("text/") or mime.endswith("+json"):
            texts.append(value if isinstance(value, str)
                         else json.dumps(value))
    return texts


def stored_lines(path):
    """(where, line, tags) for every line of every stored output, and for
    the widget state the page embeds."""
    nb = nbformat.read(path, as_version=4)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        where = f"cell {index} [{cell.execution_count}]"
        for output in cell.get("outputs", []):
            for text in output_texts(output):
                for line in text.splitlines():
                    yield where, line, tags
    state = nb.metadata.get("widgets")
    if state:
        yield "widget state in the metadata", json.dumps(state), []


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_path_of_the_build_machine_in_the_outputs(path):
    found = [f"{where}: {line.strip()[:120]}"
             for where, line, _ in stored_lines(path)
             if MACHINE_PATH.search(line)]
    assert not found, (
        f"{path.name} shows absolute paths of the machine that ran it "
        "(print paths relative to ~ or the project, or not at all; "
        "catch warnings where they arise):\n  " + "\n  ".join(found[:10]))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_unexplained_warning_in_the_outputs(path):
    found = [f"{where}: {line.strip()[:120]}"
             for where, line, tags in stored_lines(path)
             if WARNING_LINE.search(line) and EXPLAINED not in tags]
    assert not found, (
        f"{path.name} prints raw Python warnings (catch the expected ones "
        "and say what they mean, or tag the cell "
        f"{EXPLAINED!r} if its text explains them):\n  "
        + "\n  ".join(found[:10]))


@pytest.mark.parametrize("text", [
    "from the cache /root/.cache/nnlib/mnist",
    "/home/ada/nn/nnlib/fast_kernels.py:406: RuntimeWarning: overflow",
    "saved to /tmp/model.npz",
    "C:\\Users\\ada\\nn\\data",
    f"{ROOT}/nnlib/losses.py:24",
])
def test_machine_paths_are_recognised(text):
    assert MACHINE_PATH.search(text)


@pytest.mark.parametrize("text", [
    "from the cache ~/.cache/nnlib/mnist",
    "nnlib/fast_kernels.py:406",
    "https://example.org/tmp/train.gz",
    "shape (64, 1, 28, 28) / 255",
])
def test_relative_paths_and_urls_are_not_machine_paths(text):
    assert not MACHINE_PATH.search(text)


def test_warning_lines_are_recognised():
    assert WARNING_LINE.search(
        "nnlib/fast_kernels.py:406: RuntimeWarning: overflow encountered")
    assert WARNING_LINE.search("UserWarning: something")
    assert not WARNING_LINE.search("a warning: the loss became nan")
