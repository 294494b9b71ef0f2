"""Two trainings at once: how many networks a minute, against one alone?

The book trains its seeds and ensemble members one after another, each
with BLAS on both cores. Training two at once, each on one core, would
put the second core to work on what BLAS does not parallelise (im2col,
BatchNorm, pooling, the element-wise passes). This measures what that
would buy, for the book's CNN (batch 128, with chapter 6's shifts and
rotations) and MLP (batch 128), over ``--rounds`` interleaved rounds of
``--steps`` training steps each:

- one network alone, BLAS on both threads (how ``fit`` runs);
- two networks at once in two threads of one process, BLAS on one thread;
- two networks at once in two processes, BLAS on one thread each
  (processes share no interpreter lock).

It prints, per round and as medians, the networks trained per unit of time
relative to one alone (1 = no gain, 2 = the second core doubles it), and
the CPU. Run it with the threads pinned, as make does:

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 .venv/bin/python benchmarks/side_by_side.py
"""
import argparse
import multiprocessing
import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from nnlib import models, optim
from nnlib.augment import random_shift_rotate
from nnlib.losses import CrossEntropyLoss
from nnlib.train import fit

BATCH = 128
NETWORKS = {
    "CNN": (lambda rng: models.seed_cnn(rng=rng), (1, 28, 28),
            random_shift_rotate),
    "MLP": (lambda rng: models.mlp(rng=rng), (784,), None),
}


def train_steps(name, steps, seed=0):
    """Seconds for ``steps`` training steps of a new network, after one
    warm-up step, on random images (the speed does not depend on them)."""
    make, shape, augment = NETWORKS[name]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((BATCH * steps, *shape)).astype(np.float32)
    y = rng.integers(0, 10, size=len(X))
    model = make(rng)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    for part in (slice(0, BATCH), slice(0, len(X))):
        start = time.perf_counter()
        fit(model, CrossEntropyLoss(), optimizer, (X[part], y[part]),
            num_epochs=1, batch_size=BATCH, rng=rng, augment=augment)
    return time.perf_counter() - start


def _one_thread(args):
    with threadpool_limits(1):
        return train_steps(*args)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}; batch {BATCH}, {args.steps} steps a network")
    context = multiprocessing.get_context("fork")
    for name in NETWORKS:
        gains = {"threads": [], "processes": []}
        for _ in range(args.rounds):
            alone = train_steps(name, args.steps)
            start = time.perf_counter()
            with threadpool_limits(1), ThreadPoolExecutor(2) as pool:
                list(pool.map(train_steps, [name] * 2, [args.steps] * 2,
                              (1, 2)))
            gains["threads"].append(2 * alone / (time.perf_counter() - start))
            with context.Pool(2) as pool:
                start = time.perf_counter()
                pool.map(_one_thread, [(name, args.steps, s) for s in (1, 2)])
                gains["processes"].append(
                    2 * alone / (time.perf_counter() - start))
        for how, values in gains.items():
            print(f"{name}, two at once in {how:9s}: "
                  + " ".join(f"{v:.2f}" for v in values)
                  + f"  median {statistics.median(values):.2f}x the "
                  "networks a minute of one alone")


if __name__ == "__main__":
    main()
