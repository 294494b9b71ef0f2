"""Is this version of nnlib faster than an older one? Both in one process.

A host's speed drifts from hour to hour by more than most changes to the
library gain, so two benchmark runs at different times cannot compare two
versions. This script loads the older nnlib under another name beside the
current one and times the same training steps with each, interleaved
(the order alternating between rounds), on the same data and weights. It
prints each version's median step time and the median of the per-round
ratios, current over old: below 1 means the current version is faster.

The older version is any folder that holds an ``nnlib/`` package, such as
a second checkout:

    git worktree add /tmp/nnlib-old <commit>
    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 .venv/bin/python \\
        benchmarks/versions.py /tmp/nnlib-old --model cnn --batch 128 --augment

The step is ``fit``'s (zero_grad, forward, loss, backward, optimiser step)
for the book's CNN (Adam) or MLP (SGD); ``--augment`` adds chapter 5's
random shifts and rotations to every batch, as chapter 6's members train.
"""
import argparse
import atexit
import os
import shutil
import sys
import tempfile
import time
from importlib import import_module

import numpy as np

import nnlib
import workloads as W


def load_old(folder):
    """The ``nnlib`` package in ``folder``, imported as ``nnlib_old`` (its
    imports are relative, so a renamed copy is a package of its own)."""
    source = os.path.join(folder, "nnlib")
    if not os.path.isfile(os.path.join(source, "__init__.py")):
        sys.exit(f"{folder} holds no nnlib/ package: pass the folder of an "
                 f"older checkout (git worktree add <folder> <commit>)")
    target = tempfile.mkdtemp(prefix="nnlib-old-")
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    shutil.copytree(source, os.path.join(target, "nnlib_old"))
    sys.path.insert(0, target)
    return import_module("nnlib_old")


def steps_with(lib, model_name, batch, augment, X, y):
    """A function running len(X) // batch training steps with ``lib``."""
    model, opt = W.build_nnlib(model_name, lib=lib)
    model.input_grad = False                        # as fit trains
    loss_fn = import_module(f"{lib.__name__}.losses").CrossEntropyLoss()
    shift_rotate = import_module(f"{lib.__name__}.augment").random_shift_rotate
    aug_rng = np.random.default_rng(1)

    def run():
        for i in range(0, len(X) - batch + 1, batch):
            xb = X[i:i + batch]
            if augment:
                xb = shift_rotate(xb, aug_rng)
            opt.zero_grad()
            loss_fn(model(xb), y[i:i + batch])
            model.backward(loss_fn.backward())
            opt.step()
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old", help="a folder holding the older nnlib/ package")
    p.add_argument("--model", choices=("cnn", "mlp"), default="cnn")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--augment", action="store_true",
                   help="random shifts and rotations on every batch (CNN)")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args()
    if args.augment and args.model != "cnn":
        p.error("--augment is for the CNN (the MLP takes flat rows)")
    old = load_old(args.old)
    Xtr, ytr, _, _, _ = W.load_data("mnist", np.random.default_rng(0))
    n = args.steps * args.batch
    X, y = W.inputs(args.model, Xtr[:n]), ytr[:n]
    subjects = {"old": steps_with(old, args.model, args.batch, args.augment,
                                  X, y),
                "current": steps_with(nnlib, args.model, args.batch,
                                      args.augment, X, y)}
    ms = {name: [] for name in subjects}
    for r in range(args.rounds):
        for name in (["old", "current"] if r % 2 else ["current", "old"]):
            subjects[name]()                          # warm up
            start = time.perf_counter()
            subjects[name]()
            ms[name].append(1e3 * (time.perf_counter() - start) / args.steps)
    ratios = np.array(ms["current"]) / np.array(ms["old"])
    print(f"{args.model}, batch {args.batch}"
          f"{', shifts and rotations' if args.augment else ''}; "
          f"{args.rounds} rounds of {args.steps} steps, load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"old ({args.old}): {np.median(ms['old']):.2f} ms a step; "
          f"current: {np.median(ms['current']):.2f} ms")
    print(f"current / old, median of the rounds: {np.median(ratios):.3f} "
          f"({ratios.min():.3f}-{ratios.max():.3f})")


if __name__ == "__main__":
    main()
