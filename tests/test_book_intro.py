"""The landing page (book/intro.md) describes the book as it is: every
chapter in its chapter table, every module of nnlib in its module table.
Read from the files, so a new chapter or module that the page does not
mention fails here rather than going unnoticed."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INTRO = (ROOT / "book" / "intro.md").read_text()


def test_every_chapter_is_in_the_chapter_table():
    chapters = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert chapters
    linked = set(re.findall(r"\]\(\.\./notebooks/([\w-]+)\.ipynb\)", INTRO))
    missing = [path.stem for path in chapters if path.stem not in linked]
    assert not missing, f"book/intro.md does not list: {missing}"


def test_every_module_is_in_the_module_table():
    modules = sorted(path.stem for path in (ROOT / "nnlib").glob("*.py")
                     if not path.stem.startswith("__"))
    named = set(re.findall(r"`nnlib\.(\w+)`", INTRO))
    missing = [name for name in modules if name not in named]
    assert not missing, f"book/intro.md's module table lacks: {missing}"
