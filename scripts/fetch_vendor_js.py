"""Fetch the JavaScript the built book serves from its own pages.

By default a Jupyter Book page loads require.js, the ipywidgets renderer
and MathJax from public CDNs. Offline, or where a CDN is blocked, widget
areas stay blank and maths shows as raw TeX. So `make book` fetches those
scripts with the ordinary npm client (`npm pack`, which downloads one
package tarball and none of its dependencies), checks each tarball against
the sha512 pinned below, and unpacks only the files the pages need into
book/widgets/vendor/ (git-ignored; `html_static_path` in _config.yml).

To upgrade a package, change its version, run this script once and copy
the sha512 it reports into PACKAGES.

Usage: python scripts/fetch_vendor_js.py [DEST]
"""
import base64
import fnmatch
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

DEST = Path("book/widgets/vendor")

# package spec -> (sha512 of the tarball, {path in tarball: folder in DEST}).
# A path may be a glob ("dist/*.woff2"); one ending in "/" copies that
# folder. The widget renderer and MathJax load fonts (and MathJax its TeX
# extensions) from next to their own script when a page needs them.
PACKAGES = {
    "requirejs@2.3.8": (
        "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP1"
        "7c+Jd5otXKGNehIonFlyQXSowL6Mw==",
        {"require.js": "requirejs"},
    ),
    "@jupyter-widgets/html-manager@1.0.15": (
        "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3"
        "FUTopvFi//SABeNz1yp47bCrJ3CQA==",
        {"dist/embed-amd.js": "html-manager",
         "dist/*.woff2": "html-manager", "dist/*.woff": "html-manager"},
    ),
    "mathjax@3.2.2": (
        "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1"
        "/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
        {
            "LICENSE": "mathjax",
            "es5/tex-chtml.js": "mathjax",
            "es5/input/": "mathjax/input",
            "es5/output/chtml/": "mathjax/output/chtml",
            "es5/a11y/": "mathjax/a11y",
            "es5/sre/": "mathjax/sre",
            "es5/ui/": "mathjax/ui",
        },
    ),
}
STAMP = "VERSIONS.txt"


def sha512_integrity(path):
    """The npm-style integrity string of a file: 'sha512-' + base64."""
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def npm_pack(spec, workdir):
    """Download one package tarball with `npm pack`; return its path."""
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm not found: install Node.js and npm (e.g. "
                 "`apt-get install npm`), then run `make book` again.")
    result = subprocess.run(
        [npm, "pack", spec, "--json", "--pack-destination", str(workdir)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        sys.exit(f"`npm pack {spec}` failed:\n{result.stderr.strip()}")
    return workdir / json.loads(result.stdout)[0]["filename"]


def unpack(tarball, wanted, dest):
    """Copy the wanted files and folders of an npm tarball into dest."""
    missing = set(wanted)
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            name = member.name.removeprefix("package/")
            for source, folder in wanted.items():
                if source.endswith("/") and name.startswith(source):
                    target = dest / folder / name[len(source):]
                elif fnmatch.fnmatchcase(name, source):
                    target = dest / folder / Path(name).name
                else:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())
                missing.discard(source)
    if missing:
        sys.exit(f"{tarball.name} has no {', '.join(sorted(missing))}: "
                 "update PACKAGES in fetch_vendor_js.py to its layout.")


def main(dest=DEST):
    dest = Path(dest)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        staging = tmp / "vendor"
        for spec, (integrity, wanted) in PACKAGES.items():
            tarball = npm_pack(spec, tmp)
            found = sha512_integrity(tarball)
            if found != integrity:
                sys.exit(f"{spec}: the tarball's sha512 is {found}, but "
                         f"{Path(__file__).name} pins {integrity}. If you "
                         "changed the version on purpose, pin the new value.")
            unpack(tarball, wanted, staging)
            print(f"fetched {spec}")
        (staging / STAMP).write_text("\n".join(PACKAGES) + "\n")
        # Replace the old folder only once everything has been fetched.
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staging, dest)
    print(f"widget and MathJax scripts are in {dest}/")


if __name__ == "__main__":
    main(*sys.argv[1:])
