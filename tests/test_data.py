"""Tests of nnlib.data: normalisation, splits, batches, one-hot, and the
names it keeps for nnlib.mnist."""
import subprocess
import sys

import numpy as np
import pytest

from nnlib import data, mnist
from nnlib.data import (MNIST_MEAN, MNIST_STD, batches, normalize, one_hot,
                        train_val_split)


# --- preprocessing and batches -------------------------------------------------

def test_normalize_shapes_values_and_dtype():
    X = np.array([[[0, 255], [51, 102]]] * 3, dtype=np.uint8)  # (3, 2, 2)
    x = normalize(X)
    assert x.shape == (3, 1, 2, 2) and x.dtype == np.float32
    expected = (np.array([[0, 1], [0.2, 0.4]]) - MNIST_MEAN) / MNIST_STD
    np.testing.assert_allclose(x[0, 0], expected, rtol=1e-6)
    flat = normalize(X, flatten=True)
    assert flat.shape == (3, 4)
    np.testing.assert_array_equal(flat, x.reshape(3, 4))
    x64 = normalize(X, mean=0.5, std=0.5, dtype=np.float64)
    assert x64.dtype == np.float64 and x64.min() == -1 and x64.max() == 1
    with pytest.raises(ValueError, match="already normalized"):
        normalize(x)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        normalize(X.reshape(3, 4))


def numbered(n):
    """X whose row i is all i, and y = i: shows which rows went where."""
    return np.repeat(np.arange(n)[:, None], 5, axis=1), np.arange(n)


def test_train_val_split_is_a_seeded_partition():
    X, y = numbered(50)
    X_tr, y_tr, X_val, y_val = train_val_split(X, y, 10,
                                               rng=np.random.default_rng(1))
    assert X_tr.shape == (40, 5) and X_val.shape == (10, 5)
    np.testing.assert_array_equal(X_tr[:, 0], y_tr)  # pairs stay together
    np.testing.assert_array_equal(X_val[:, 0], y_val)
    assert sorted([*y_tr, *y_val]) == list(range(50))
    again = train_val_split(X, y, 10, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(again[3], y_val)
    other = train_val_split(X, y, 10, rng=np.random.default_rng(2))
    assert not np.array_equal(other[3], y_val)
    with pytest.raises(ValueError, match="n_val must be between 1 and 49"):
        train_val_split(X, y, 50, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="default_rng"):
        train_val_split(X, y, 10, rng=0)
    with pytest.raises(ValueError, match="50 examples need 50 labels"):
        train_val_split(X, y[:-1], 10, rng=np.random.default_rng(0))


def test_batches_cover_every_example_once_per_epoch():
    X, y = numbered(23)
    in_order = list(batches(X, y, 5))
    assert [len(yb) for _, yb in in_order] == [5, 5, 5, 5, 3]
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in in_order]),
                                  y)
    rng = np.random.default_rng(3)
    epochs = [[yb for _, yb in batches(X, y, 5, rng=rng)] for _ in range(2)]
    for epoch in epochs:
        seen = np.concatenate(epoch)
        assert sorted(seen) == list(range(23))
        assert not np.array_equal(seen, y)
    assert not np.array_equal(np.concatenate(epochs[0]),
                              np.concatenate(epochs[1]))
    replay = [yb for _, yb in batches(X, y, 5, rng=np.random.default_rng(3))]
    np.testing.assert_array_equal(np.concatenate(replay),
                                  np.concatenate(epochs[0]))
    for Xb, yb in batches(X, y, 5, rng=rng):
        np.testing.assert_array_equal(Xb[:, 0], yb)
    with pytest.raises(ValueError, match="batch_size"):
        next(batches(X, y, 0))


def test_one_hot():
    y = np.array([3, 0, 9])
    Y = one_hot(y)
    assert Y.shape == (3, 10) and Y.dtype == np.float32
    np.testing.assert_array_equal(Y.argmax(axis=1), y)
    assert Y.sum() == 3
    with pytest.raises(ValueError, match=r"0\.\.9"):
        one_hot(np.array([10]))




# --- the names kept for nnlib.mnist --------------------------------------------

def test_mnist_names_stay_reachable_from_data():
    from nnlib.data import MNISTNotFoundError, load_mnist
    assert load_mnist is mnist.load_mnist
    assert MNISTNotFoundError is mnist.MNISTNotFoundError
    for name in ("read_idx", "cache_dir", "MNIST_FILES", "MNISTFileError"):
        assert getattr(data, name) is getattr(mnist, name)
        assert name in dir(data)
    with pytest.raises(AttributeError, match="no attribute 'load_mnsit'"):
        data.load_mnsit


def test_training_does_not_import_the_downloader():
    code = ("import sys, nnlib.train; "
            "print(sorted(m for m in ('nnlib.mnist', 'urllib.request', "
            "'tarfile') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"
