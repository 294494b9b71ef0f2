"""Does fit's BatchSplit pay on this machine? A/B of CNN training steps.

Trains the book's CNN (``models.seed_cnn``, Adam, batch 64) for 150 steps
inside ``BatchSplit(2)`` (each core takes half of every batch, BLAS on one
thread each) and inside ``BatchSplit(1)`` (the whole batch on the calling
thread, BLAS on its threads), interleaved, three times, and prints the
milliseconds per step. Run it with the threads pinned, as make does:

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 .venv/bin/python benchmarks/batch_split.py
"""
import time

import numpy as np

from nnlib import data, losses, models, optim
from nnlib.fast_kernels import BatchSplit

STEPS, BATCH = 150, 64


def ms_per_step(threads, X, y):
    model = models.seed_cnn(rng=np.random.default_rng(0))
    model.input_grad = False
    loss_fn = losses.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=1e-3)
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
        for threads in (2, 1):
            print(f"BatchSplit({threads}): {ms_per_step(threads, X, y):.2f} "
                  "ms/step", flush=True)


if __name__ == "__main__":
    main()
