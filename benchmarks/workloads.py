"""What the benchmark times, written once for nnlib and once for PyTorch.

Each workload is a pair of twins with the same architecture, weights,
optimiser, batch size and data: an nnlib ``Sequential`` and a
``torch.nn.Sequential`` whose parameters are copied from it. Both training
loops do the same work per step (shuffle, gather the batch, forward, loss,
backward, optimiser step, count the correct answers), as ``nnlib.train.fit``
does.

Imported by ``run.py`` after it has fixed the number of threads; importing
NumPy or PyTorch first would start their thread pools at the default size.
"""
import time
from importlib import import_module

import numpy as np

from nnlib.data import MNISTNotFoundError, load_mnist, normalize
from nnlib.layers import Conv2d, Linear
from nnlib.losses import CrossEntropyLoss
from nnlib import models, optim
from nnlib.train import fit, predict

DESCRIPTION = {
    "cnn": "CNN (Conv 1→16 5x5, BN, ReLU, pool, Conv 16→32 5x5, BN, ReLU, "
           "pool, Linear 512→10), Adam lr 1e-3",
    "mlp": "MLP 784-256-64-10 (ReLU), SGD lr 0.1",
}


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
def load_data(kind, rng):
    """(X_train, y_train, X_test, y_test, label): float32 images (N, 1, 28, 28).

    ``kind='mnist'`` reads the real digits with ``nnlib.data.load_mnist``
    and falls back to synthetic data if they cannot be found;
    ``'synthetic'`` draws MNIST-shaped normal noise and random labels. The
    time of a step does not depend on the pixel values, only on the shapes.
    """
    if kind == "mnist":
        try:
            Xtr, ytr, Xte, yte = load_mnist(verbose=False)
            return (normalize(Xtr), ytr.astype(np.int64), normalize(Xte),
                    yte.astype(np.int64), "real MNIST (nnlib.data.load_mnist)")
        except MNISTNotFoundError:
            kind = "synthetic (MNIST files not found)"
    Xtr = rng.standard_normal((60000, 1, 28, 28), dtype=np.float32)
    Xte = rng.standard_normal((10000, 1, 28, 28), dtype=np.float32)
    return (Xtr, rng.integers(0, 10, 60000), Xte, rng.integers(0, 10, 10000),
            "synthetic MNIST-shaped" if kind == "synthetic" else kind)


def inputs(model_name, X):
    """The CNN takes (N, 1, 28, 28) images, the MLP (N, 784) rows (a view)."""
    return X if model_name == "cnn" else X.reshape(len(X), -1)


# ---------------------------------------------------------------------------
# The twins
# ---------------------------------------------------------------------------
def build_nnlib(model_name, seed=0, lib=None):
    """(model, optimizer) in nnlib, or with ``lib``, another copy of the
    nnlib package (``versions.py``'s older version), in that one."""
    m, o = models, optim
    if lib is not None:
        m, o = (import_module(f"{lib.__name__}.{part}")
                for part in ("models", "optim"))
    rng = np.random.default_rng(seed)
    if model_name == "cnn":
        model = m.seed_cnn(rng=rng)
        return model, o.Adam(model.parameters(), lr=1e-3)
    model = m.mlp((784, 256, 64, 10), rng=rng)
    return model, o.SGD(model.parameters(), lr=0.1)


def build_torch(model_name, nn_model):
    """(model, optimizer) in PyTorch, with ``nn_model``'s weights copied in.

    The layers are PyTorch's own (``torch.nn``); their parameters have the
    same shapes and names as nnlib's, so the state dicts match one to one.
    """
    import torch
    from torch import nn
    if model_name == "cnn":
        model = nn.Sequential(
            nn.Conv2d(1, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(512, 10))
    else:
        model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(),
                              nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 10))
    state = {k: torch.from_numpy(np.array(v))
             for k, v in nn_model.state_dict().items()}
    result = model.load_state_dict(state, strict=False)
    # only BatchNorm's step counter, num_batches_tracked, has no twin
    if result.unexpected_keys or any(
            not k.endswith("num_batches_tracked") for k in result.missing_keys):
        raise RuntimeError(f"the twins differ: {result}")
    if model_name == "cnn":
        return model, torch.optim.Adam(model.parameters(), lr=1e-3)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def max_logit_difference(model_name, nn_model, torch_model, X):
    """Largest |nnlib logit - PyTorch logit| on a batch, in evaluation mode:
    evidence that the two twins compute the same function."""
    import torch
    nn_model.eval()
    torch_model.eval()
    x = inputs(model_name, X[:64])
    with torch.inference_mode():
        theirs = torch_model(torch.from_numpy(x)).numpy()
    ours = nn_model.forward(x)
    nn_model.train()
    torch_model.train()
    return float(np.max(np.abs(ours - theirs)))


# ---------------------------------------------------------------------------
# Timed work
# ---------------------------------------------------------------------------
def train_nnlib(model, opt, X, y, batch_size, steps, rng):
    """Seconds for ``steps`` training steps with ``nnlib.train.fit``: one
    epoch over the first ``steps * batch_size`` examples."""
    n = min(len(X), steps * batch_size)
    start = time.perf_counter()
    fit(model, CrossEntropyLoss(), opt, (X[:n], y[:n]), num_epochs=1,
        batch_size=batch_size, rng=rng)
    return time.perf_counter() - start


def train_torch(model, opt, X, y, batch_size, steps, rng):
    """The same loop as ``fit``'s in PyTorch; X, y are NumPy arrays shared
    with PyTorch tensors (no copy)."""
    import torch
    loss_fn = torch.nn.CrossEntropyLoss()
    tX, ty = torch.from_numpy(X), torch.from_numpy(y)
    n = min(len(X), steps * batch_size)
    start = time.perf_counter()
    model.train()
    order = torch.from_numpy(rng.permutation(n))
    correct = 0
    for i in range(0, n, batch_size):
        idx = order[i:i + batch_size]
        xb, yb = tX[idx], ty[idx]
        opt.zero_grad(set_to_none=True)
        logits = model(xb)
        loss = loss_fn(logits, yb)
        loss.backward()
        opt.step()
        loss.item()                              # as fit records the loss
        correct += int((logits.argmax(1) == yb).sum())
    return time.perf_counter() - start


def infer_nnlib(model, X, batch_size=256, min_seconds=1.0):
    """Images per second of ``nnlib.train.predict`` over all of X."""
    return _images_per_second(lambda: predict(model, X, batch_size), len(X),
                              min_seconds)


def infer_torch(model, X, batch_size=256, min_seconds=1.0):
    """Images per second of the PyTorch twin over all of X, in batches."""
    import torch
    tX = torch.from_numpy(X)

    def run():
        with torch.inference_mode():
            for i in range(0, len(X), batch_size):
                model(tX[i:i + batch_size])

    model.eval()
    try:
        return _images_per_second(run, len(X), min_seconds)
    finally:
        model.train()


def _images_per_second(run, n, min_seconds):
    """Passes of ``run`` (each over n images) repeated until min_seconds
    have passed: a single pass over the test set takes only 0.05-1 s, too
    short to time alone."""
    passes, start = 0, time.perf_counter()
    while True:
        run()
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return passes * n / elapsed


# ---------------------------------------------------------------------------
# Arithmetic
# ---------------------------------------------------------------------------
def matmul_flops(model, x):
    """(forward, backward) FLOPs per example of the matrix products.

    A product with K terms per output costs 2K FLOPs per output (multiply
    and add). Backward costs twice the forward (weight gradient and input
    gradient) except in the first layer, where training skips the input
    gradient. Element-wise work (BN, ReLU, pooling) is not counted, as is
    usual. Runs one forward pass on ``x[:1]`` to learn each layer's shape.
    """
    forward = backward = 0
    h = x[:1]
    for i, layer in enumerate(model):
        out = layer.forward(h)
        if isinstance(layer, Linear):
            flops = 2 * layer.in_features * layer.out_features
        elif isinstance(layer, Conv2d):
            k = layer.kernel_size
            flops = 2 * out[0].size * layer.in_channels * k * k
        else:
            flops = 0
        forward += flops
        backward += flops if i == 0 else 2 * flops
        h = out
    return forward, backward


def matmul_peak(repeats=10, n=1024):
    """Best float32 GFLOP/s of an n x n matrix product in NumPy."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    return _best_gflops(a, b, n, repeats)


def matmul_peak_torch(repeats=10, n=1024):
    """The same in PyTorch."""
    import torch
    return _best_gflops(torch.randn(n, n), torch.randn(n, n), n, repeats)


def _best_gflops(a, b, n, repeats):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9
