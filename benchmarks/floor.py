"""How much of nnlib's CNN step is arithmetic, and what would 0.7x PyTorch leave?

For the book's CNN (``models.seed_cnn``, Adam, batch 64), in one process,
interleaved, ``--rounds`` rounds of ``--steps`` steps each:

- nnlib's training step, as ``fit`` runs it;
- the matrix products of that step alone: the same products, with the
  same shapes and memory layouts, on arrays captured from a real step as
  ``fit`` runs it (the first convolution folded with its BatchNorm and
  pool: P w, P1'y0 and P1'dz; the second convolution's forward product,
  weight gradient and banded input gradient; the linear layer's three
  products);
- one copy of an array the size of the first convolution's output
  (64 x 16 x 24 x 24 values): the cost of one pass over the largest
  activation, which BatchNorm, ReLU and pooling each make several of;
- PyTorch's training step, if PyTorch is installed (``pip install -e
  .[bench]``).

It prints the medians, the ratios to PyTorch's step, and the time that a
step of 0.7x PyTorch's would leave for everything that is not a matrix
product, also counted in passes over the largest activation. Run it with
the threads pinned, as make does:

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 .venv/bin/python benchmarks/floor.py
"""
import argparse
import os
import time

import numpy as np

from nnlib import data, losses, models, optim
from nnlib.fast_kernels import band_weights, input_grad_strategy
from nnlib.layers import Conv2d, ConvBatchNorm, Linear

BATCH = 64
TARGET = 0.7


def nnlib_step(model, opt, loss_fn):
    def step(x, y):
        opt.zero_grad()
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        opt.step()
    return step


def products_of(model, x, y, loss_fn):
    """A function that runs the matrix products of one training step,
    with operands taken from a real forward pass of ``model`` as ``fit``
    runs it (no input gradient, so the first convolution and its
    BatchNorm run as one)."""
    input_grad, model.input_grad = model.input_grad, False
    layers, h = model.run_order(), x
    for layer in layers:
        h = layer.forward(h)
    rng = np.random.default_rng(0)
    work = []
    for layer in layers:
        if isinstance(layer, ConvBatchNorm):
            planes = layer.cache[0]
            kk, f = len(planes) - 1, layer.conv.out_channels
            w_mat = np.ones((kk, f), np.float32)
            w1 = np.ones((kk + 1, f), np.float32)
            d = rng.standard_normal((planes.shape[1], f), dtype=np.float32)
            work.append(lambda p=planes, w=w_mat: p[:-1].T @ w)    # P w
            work.append(lambda p=planes, d=d: p @ d)     # P1'y0, and P1'dz
            work.append(lambda p=planes, d=d: p @ d)
            pooled = layer.cache[-1]
            if pooled is None or pooled[0] != "blocks":   # z, whole
                work.append(lambda p=planes, w=w1: p.T @ w)
        elif isinstance(layer, Conv2d):
            _, padded, cols, w, stride, _, _ = layer.cache
            f, c, k, _ = w.shape
            w_mat = w.transpose(2, 3, 1, 0).reshape(k * k * c, f)
            d = rng.standard_normal((len(cols), f), dtype=np.float32)
            work.append(lambda cols=cols, w_mat=w_mat: cols @ w_mat)
            work.append(lambda cols=cols, d=d: cols.T @ d)
            if input_grad_strategy(w.shape, padded) == "rows":
                out_w = (padded[2] - k) // stride + 1
                band = band_weights(w, padded[2], stride, out_w)
                d2 = d.reshape(-1, band.shape[1])
                work.append(lambda d2=d2, band=band: d2 @ band.T)
            else:
                w_cells = np.ascontiguousarray(
                    w.transpose(2, 3, 0, 1)).reshape(k * k, f, c)
                work.append(lambda d=d, w_cells=w_cells:
                            np.matmul(d, w_cells))
        elif isinstance(layer, Linear):
            xin, w = layer.x, layer.weight.data
            d = rng.standard_normal((len(xin), len(w)), dtype=np.float32)
            work.append(lambda xin=xin, w=w: xin @ w.T)
            work.append(lambda xin=xin, d=d: d.T @ xin)
            work.append(lambda d=d, w=w: d @ w)
    model.input_grad = input_grad

    def step(_x, _y):
        for product in work:
            product()
    return step


def one_pass():
    a = np.ones((BATCH, 24, 24, 16), np.float32)
    b = np.empty_like(a)
    return lambda _x, _y: np.copyto(b, a)


def torch_step():
    try:
        import torch
    except ImportError:
        return None
    from torch import nn
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    model = nn.Sequential(
        nn.Conv2d(1, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(512, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt.step()
    return step


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=60)
    args = p.parse_args()
    X_u8, y_all, _, _ = data.load_mnist(verbose=False)
    n = args.steps * BATCH
    X = data.normalize(X_u8[:n])
    y = y_all[:n].astype(np.int64)
    model = models.seed_cnn(rng=np.random.default_rng(0))
    model.input_grad = False                      # as fit trains
    loss_fn = losses.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    subjects = {"nnlib step": nnlib_step(model, opt, loss_fn),
                "its matrix products": products_of(model, X[:BATCH],
                                                   y[:BATCH], loss_fn),
                "one pass over 64x16x24x24": one_pass()}
    theirs = torch_step()
    if theirs is not None:
        subjects["PyTorch step"] = theirs
    times = {name: [] for name in subjects}
    for r in range(args.rounds):
        names = list(subjects)
        if r % 2:
            names.reverse()
        for name in names:
            run = subjects[name]
            run(X[:BATCH], y[:BATCH])                  # warm up
            start = time.perf_counter()
            for i in range(0, n, BATCH):
                run(X[i:i + BATCH], y[i:i + BATCH])
            times[name].append((time.perf_counter() - start) / args.steps)
    ms = {name: 1e3 * float(np.median(t)) for name, t in times.items()}
    print(f"batch {BATCH}, {args.rounds} rounds of {args.steps} steps, "
          f"load average {os.getloadavg()[0]:.1f}; medians (min-max), ms\n")
    print("| what | ms | / PyTorch step |\n|---|---|---|")
    torch_ms = ms.get("PyTorch step")
    for name, t in times.items():
        ratio = f"{ms[name] / torch_ms:.2f}" if torch_ms else "-"
        print(f"| {name} | {ms[name]:.2f} ({1e3 * min(t):.2f}-"
              f"{1e3 * max(t):.2f}) | {ratio} |")
    if torch_ms:
        left = TARGET * torch_ms - ms["its matrix products"]
        spent = ms["nnlib step"] - ms["its matrix products"]
        print(f"\nA step of {TARGET}x PyTorch's is {TARGET * torch_ms:.2f} ms; "
              f"after the matrix products it leaves {left:.2f} ms for all "
              f"the rest, {left / ms['one pass over 64x16x24x24']:.1f} passes "
              f"over the largest activation. nnlib's step spends "
              f"{spent:.2f} ms there now "
              f"({spent / ms['one pass over 64x16x24x24']:.1f} passes).")


if __name__ == "__main__":
    main()
