"""Does BatchSplit pay on this machine? A/B of training steps.

Trains the book's CNN (``models.seed_cnn``, Adam) and its MLP
(784-256-64-10, SGD) for 150 steps of batch 64 inside ``BatchSplit(2)``
(each core takes a part of every batch, BLAS on one thread each) and
inside ``BatchSplit(1)`` (the whole batch on the calling thread, BLAS on
its threads), interleaved, three times, and prints the milliseconds per
step. Run it with the threads pinned, as make does:

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 .venv/bin/python benchmarks/batch_split.py
"""
import time

import numpy as np

from nnlib import data, losses, models, optim
from nnlib.fast_kernels import BatchSplit

STEPS, BATCH = 150, 64


def build(name):
    rng = np.random.default_rng(0)
    if name == "CNN":
        model = models.seed_cnn(rng=rng)
        return model, optim.Adam(model.parameters(), lr=1e-3)
    model = models.mlp((784, 256, 64, 10), rng=rng)
    return model, optim.SGD(model.parameters(), lr=0.1)


def ms_per_step(name, threads, X, y):
    model, opt = build(name)
    model.input_grad = False
    loss_fn = losses.CrossEntropyLoss()
    if name == "MLP":
        X = X.reshape(len(X), -1)
    start = time.perf_counter()
    with BatchSplit(threads):
        for i in range(0, len(X), BATCH):
            opt.zero_grad()
            loss_fn(model(X[i:i + BATCH]), y[i:i + BATCH])
            model.backward(loss_fn.backward())
            opt.step()
    return (time.perf_counter() - start) / STEPS * 1e3


def main():
    X_u8, y_all, _, _ = data.load_mnist(verbose=False)
    X = data.normalize(X_u8[:STEPS * BATCH])
    y = y_all[:STEPS * BATCH].astype(np.int64)
    for _ in range(3):
        for name in ("CNN", "MLP"):
            for threads in (2, 1):
                print(f"{name} BatchSplit({threads}): "
                      f"{ms_per_step(name, threads, X, y):.2f} ms/step",
                      flush=True)


if __name__ == "__main__":
    main()
