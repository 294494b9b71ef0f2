"""How much of nnlib's step is matrix products, and what would a target leave?

For the book's CNN (``models.seed_cnn``, Adam) or MLP (784-256-64-10, SGD),
the twins of ``workloads.py``, in one process, interleaved, ``--rounds``
rounds of ``--steps`` steps each at ``--batch`` (default 64):

- nnlib's training step, as ``fit`` runs it;
- the matrix products of that step alone: the same products, with the
  same shapes and memory layouts, on arrays captured from a real step as
  ``fit`` runs it (for the CNN, the first convolution folded with its
  BatchNorm and pool: P w, P1'y0 and P1'dz; the second convolution's
  forward product, weight gradient and banded input gradient; the linear
  layers' products);
- one copy of the step's largest array (the CNN: its first convolution's
  output, batch x 16 x 24 x 24 values; the MLP: its first weight matrix,
  256 x 784): the cost of one pass over memory, which BatchNorm, ReLU,
  pooling and the optimiser each make several of;
- PyTorch's training step, if PyTorch is installed (``pip install -e
  .[bench]``).

It prints the medians, the ratios to PyTorch's step, and the time that a
step of ``--target`` times PyTorch's (default 0.7 for the CNN, 0.6 for the
MLP) would leave for everything that is not a matrix product, also
counted in passes.

With ``--inference``, the same for predicting the 10,000 test images in
batches of 256: ``nnlib.train.predict``, the matrix products of its
compiled forward pass alone (run in predict's own threads, one BLAS
thread each), and PyTorch's model in ``torch.inference_mode()``; the
target is then images per second (default 1.5 for the CNN, 1.2 for the
MLP), and the question is whether the products alone fit in the time it
allows. Run it with the threads pinned, as make does:

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 .venv/bin/python benchmarks/floor.py
    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 .venv/bin/python benchmarks/floor.py --model mlp --inference
"""
import argparse
import os
import time

import numpy as np

from nnlib import fast_kernels as fast, losses
from nnlib.fast_kernels import band_weights, input_grad_strategy
from nnlib.inference import compile_forward
from nnlib.layers import Conv2d, ConvBatchNorm, Linear
from nnlib.train import _in_threads, _blas_threads, predict
import workloads as W

TARGETS = {("cnn", False): 0.7, ("mlp", False): 0.6,     # x PyTorch's time
           ("cnn", True): 1.5, ("mlp", True): 1.2}       # x its images/s
INFER_BATCH = 256                                         # predict's default


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
            if layer.input_grad:           # not the MLP's first layer
                work.append(lambda d=d, w=w: d @ w)
    model.input_grad = input_grad

    def step(_x, _y):
        for product in work:
            product()
    return step


def one_pass(model_name, model, batch):
    """(label, a function copying the step's largest array once)."""
    if model_name == "cnn":
        shape, label = (batch, 24, 24, 16), f"{batch}x16x24x24"
    else:
        shape = model.layers[0].weight.data.shape
        label = "x".join(map(str, shape)) + " (the first weights)"
    a = np.ones(shape, np.float32)
    b = np.empty_like(a)
    return label, lambda _x, _y: np.copyto(b, a)


def torch_or_none():
    """PyTorch on the threads OMP_NUM_THREADS names, or None if it is not
    installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    return torch


def torch_step(model_name, nn_model):
    """PyTorch's training step for the twin of ``nn_model``, or None."""
    torch = torch_or_none()
    if torch is None:
        return None
    model, opt = W.build_torch(model_name, nn_model)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt.step()
    return step


def interleaved(subjects, rounds, calls):
    """{name: [seconds per call, of each round]}: each subject called with
    every argument tuple of ``calls`` (after one call to warm up), the
    subjects in turn, the order reversed every other round."""
    times = {name: [] for name in subjects}
    for r in range(rounds):
        names = list(subjects)
        if r % 2:
            names.reverse()
        for name in names:
            run = subjects[name]
            run(*calls[0])
            start = time.perf_counter()
            for args in calls:
                run(*args)
            times[name].append((time.perf_counter() - start) / len(calls))
    return times


def table(times, reference, unit="ms", scale=1e3):
    """Print medians (min-max) and their ratio to ``reference``'s median;
    returns the medians."""
    med = {name: scale * float(np.median(t)) for name, t in times.items()}
    print(f"| what | {unit} | / {reference} |\n|---|---|---|")
    for name, t in times.items():
        ratio = f"{med[name] / med[reference]:.2f}" \
            if reference in med else "-"
        print(f"| {name} | {med[name]:.2f} ({scale * min(t):.2f}-"
              f"{scale * max(t):.2f}) | {ratio} |")
    return med


def training(args, Xtr, ytr):
    bs, n = args.batch, args.steps * args.batch
    X, y = W.inputs(args.model, Xtr[:n]), ytr[:n]
    model, opt = W.build_nnlib(args.model)
    model.input_grad = False                      # as fit trains
    loss_fn = losses.CrossEntropyLoss()
    pass_label, copy = one_pass(args.model, model, bs)
    subjects = {f"nnlib {args.model.upper()} step":
                nnlib_step(model, opt, loss_fn),
                "its matrix products": products_of(model, X[:bs], y[:bs],
                                                   loss_fn),
                f"one pass over {pass_label}": copy}
    theirs = torch_step(args.model, model)
    if theirs is not None:
        subjects["PyTorch step"] = theirs

    calls = [(X[i:i + bs], y[i:i + bs]) for i in range(0, n, bs)]
    print(f"training, batch {bs}, {args.rounds} rounds of {args.steps} "
          f"steps, load average {os.getloadavg()[0]:.1f}; medians "
          f"(min-max)\n")
    ms = table(interleaved(subjects, args.rounds, calls), "PyTorch step")
    if "PyTorch step" in ms:
        torch_ms, one = ms["PyTorch step"], ms[f"one pass over {pass_label}"]
        products = ms["its matrix products"]
        left = args.target * torch_ms - products
        spent = ms[f"nnlib {args.model.upper()} step"] - products
        print(f"\nA step of {args.target}x PyTorch's is "
              f"{args.target * torch_ms:.2f} ms; after the matrix products "
              f"it leaves {left:.2f} ms for all the rest, {left / one:.1f} "
              f"passes over the largest array. nnlib's step spends "
              f"{spent:.2f} ms there now ({spent / one:.1f} passes).")


def inference_products(model, X):
    """A function of a batch running the matrix products of the compiled
    forward pass on that batch's size, with operands captured from the
    real pass: the im2col matrix times the weights for each convolution,
    the input times the weights for each linear layer."""
    model.eval()
    weighted = [m for m in model.layers if isinstance(m, (Conv2d, Linear))]
    by_size = {}
    for size in {INFER_BATCH, len(X) % INFER_BATCH or INFER_BATCH}:
        forward, inputs = compile_forward(model), []
        for step in forward.steps:
            if step.name in ("convolution", "linear"):
                step.run = (lambda run: lambda x: (
                    inputs.append(x.copy()), run(x))[1])(step.run)
        forward(X[:size])
        ops = []
        for layer, x in zip(weighted, inputs):
            w = layer.weight.data
            if isinstance(layer, Conv2d):
                _, cache = fast.conv2d_forward(x, w, None, layer.stride,
                                               layer.padding)
                ops.append((cache[2], w.transpose(2, 3, 1, 0).reshape(
                    -1, layer.out_channels).copy()))
            else:
                ops.append((x, w.T))
        by_size[size] = ops
    model.train()
    return lambda batch: [a @ b for a, b in by_size[len(batch)]]


def inference(args, Xte):
    X = W.inputs(args.model, Xte)
    model, _ = W.build_nnlib(args.model)
    products = inference_products(model, X)
    batches = [X[i:i + INFER_BATCH] for i in range(0, len(X), INFER_BATCH)]
    workers = _blas_threads()
    subjects = {"nnlib predict": lambda: predict(model, X),
                "its matrix products, in predict's threads":
                lambda: _in_threads(products, batches, workers)}
    torch = torch_or_none()
    if torch is not None:
        t_model, _ = W.build_torch(args.model, model)
        t_model.eval()
        tX = torch.from_numpy(X)

        def theirs():
            with torch.inference_mode():
                for i in range(0, len(X), INFER_BATCH):
                    t_model(tX[i:i + INFER_BATCH])
        subjects["PyTorch"] = theirs

    print(f"inference of the {len(X):,} test images, batches of "
          f"{INFER_BATCH}, {args.rounds} rounds of {args.steps} passes, "
          f"load average {os.getloadavg()[0]:.1f}; medians (min-max)\n")
    ms = table(interleaved(subjects, args.rounds, [()] * args.steps),
               "PyTorch")
    if "PyTorch" in ms:
        allowed = ms["PyTorch"] / args.target
        products = ms["its matrix products, in predict's threads"]
        print(f"\n{args.target}x PyTorch's images/s means {allowed:.2f} ms "
              f"for the {len(X):,} images; the matrix products alone take "
              f"{products:.2f} ms, leaving {allowed - products:.2f} ms for "
              f"all the rest. nnlib spends "
              f"{ms['nnlib predict'] - products:.2f} ms there now.")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=["cnn", "mlp"], default="cnn")
    p.add_argument("--batch", type=int, default=64,
                   help="training batch size (default 64)")
    p.add_argument("--inference", action="store_true",
                   help="predicting the test images instead of training")
    p.add_argument("--target", type=float, default=None,
                   help="x PyTorch's step time (default 0.7 for the CNN, "
                        "0.6 for the MLP), or with --inference x its "
                        "images/s (default 1.5 and 1.2)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=None,
                   help="steps per round (default 60), or passes over the "
                        "test set with --inference (default 5)")
    args = p.parse_args()
    if args.target is None:
        args.target = TARGETS[args.model, args.inference]
    if args.steps is None:
        args.steps = 5 if args.inference else 60
    for name in ("batch", "rounds", "steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if not args.target > 0:
        p.error("--target must be above 0")
    Xtr, ytr, Xte, _, label = W.load_data("mnist", np.random.default_rng(0))
    print(f"data: {label}")
    if args.inference:
        inference(args, Xte)
    else:
        training(args, Xtr, ytr)


if __name__ == "__main__":
    main()
