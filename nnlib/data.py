"""The digits as arrays: normalise, check, split, batch, one-hot.

Where the digits come from (sources, checksums, the cache) is
``nnlib.mnist``; ``load_mnist`` and the names the chapters use with it are
reachable from here too (see the end of this module).

- ``normalize(X)``: uint8 images to float inputs, (N, 1, H, W) or rows;
- ``check_pair(X, y)``: the one check of examples and labels;
- ``train_val_split(X, y, n_val, rng=)``, ``batches(X, y, batch_size)``;
- ``one_hot(y)``.
"""
import numpy as np

from .init import _check_rng

# Mean and standard deviation of all training pixels, scaled to [0, 1],
# computed from the 60,000 training images (tests/test_mnist.py recomputes
# them from the real files).
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


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


# ---------------------------------------------------------------------------
# MNIST itself lives in nnlib.mnist
# ---------------------------------------------------------------------------
# Every chapter and the README call data.load_mnist(), and chapter 1 uses
# these other names as data.<name>, so they stay reachable here. They are
# looked up on first use (PEP 562), not imported with this module: train.py
# needs check_pair, not the downloader.
_FROM_MNIST = ("load_mnist", "read_idx", "cache_dir", "MNIST_FILES",
               "MNISTFileError", "MNISTNotFoundError")


def __getattr__(name):
    if name in _FROM_MNIST:
        from . import mnist
        return getattr(mnist, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_FROM_MNIST])
