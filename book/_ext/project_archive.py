"""The project as a download: `nn-from-scratch.tar.gz` in the built book.

The book has no public repository to point at, and a chapter's .ipynb on
its own is not enough to run it: it imports `nnlib`. So every build packs
the project (the library, the chapters, the book's sources, the tests,
the Makefile and what it calls) into one archive at the root of the HTML
output, and pages link to it with a role::

    Download {project-archive}`the project`.

renders as a link to the archive, relative to the page, with its size.

What goes in: in a git checkout, the files git tracks or would track
(new, not ignored); in an unpacked
archive (no .git), every file under the project folder. Either way minus
what the build, the virtual environment or a run leaves behind (EXCLUDE).
So the archive unpacks into a folder where `make lab`, `make book` and
`make test` work as they do in a checkout.
"""
import fnmatch
import io
import os
import subprocess
import tarfile
from pathlib import Path, PurePosixPath

from docutils import nodes

ARCHIVE = "nn-from-scratch.tar.gz"
FOLDER = "nn-from-scratch"   # what the archive unpacks into

# Not project files: dot-folders (.git, .venv, CI set-up), build output,
# fetched page scripts, caches, data, benchmark results, editor leftovers.
EXCLUDE = [
    ".*/*", "_build/*", "data/*", "node_modules/*",
    "book/widgets/vendor/*", "benchmarks/results/*",
    "*/__pycache__/*", "*.pyc", "*.egg-info/*", "*/.ipynb_checkpoints/*",
    "*.npz", "*~", "*.swp",
]
KEEP = ["tests/fixtures/*.npz", ".gitignore"]   # exceptions to EXCLUDE


def excluded(path):
    path = str(path)
    if any(fnmatch.fnmatchcase(path, pattern) for pattern in KEEP):
        return False
    # "*/x/*" patterns also match at the top level ("x/..." ).
    return any(fnmatch.fnmatchcase(path, pattern)
               or fnmatch.fnmatchcase("/" + path, pattern)
               for pattern in EXCLUDE)


def project_files(root):
    """The project's files, as sorted paths relative to root."""
    root = Path(root)
    listed = None
    if (root / ".git").exists():
        # Tracked files, and new ones not yet added (but not ignored ones).
        result = subprocess.run(["git", "ls-files", "-z", "--cached",
                                 "--others", "--exclude-standard"], cwd=root,
                                capture_output=True, text=True)
        if result.returncode == 0:
            listed = [p for p in result.stdout.split("\0") if p]
    if listed is None:
        listed = []
        for dirpath, dirnames, names in os.walk(root):
            here = PurePosixPath(Path(dirpath).relative_to(root))
            # Do not descend into .venv, _build and the like at all.
            dirnames[:] = [d for d in dirnames
                           if not excluded(here / d / "x")]
            listed += [str(here / name) for name in names]
    return sorted(p for p in listed
                  if not excluded(p) and (root / p).is_file())


def write_archive(root, target):
    """Pack the project files of root into target (a .tar.gz); return the
    number of files. Owners are blanked: they are the build machine's."""
    root, target = Path(root), Path(target)
    files = project_files(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        for path in files:
            info = tar.gettarinfo(root / path, arcname=f"{FOLDER}/{path}")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(root / path, "rb") as f:
                tar.addfile(info, f)
    partial.replace(target)
    return len(files)


def size_text(num_bytes):
    return f"{num_bytes / 1e6:.1f} MB"


def build_archive(app):
    if app.builder.format != "html":
        return
    target = Path(app.outdir) / ARCHIVE
    count = write_archive(app.srcdir, target)
    app.env.project_archive_size = target.stat().st_size
    app.env.project_archive_count = count


def project_archive_role(name, rawtext, text, lineno, inliner,
                         options=None, content=None):
    """{project-archive}`link text`: a link to the archive from this page."""
    env = inliner.document.settings.env
    depth = env.docname.count("/")
    uri = "../" * depth + ARCHIVE
    size = getattr(env, "project_archive_size", None)
    label = text.strip() or ARCHIVE
    node = nodes.reference(rawtext, label, refuri=uri,
                           classes=["project-archive"])
    result = [node]
    if size:
        result.append(nodes.Text(f" ({ARCHIVE}, {size_text(size)})"))
    return result, []


def setup(app):
    app.connect("builder-inited", build_archive)
    app.add_role("project-archive", project_archive_role)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
