"""Time nnlib against PyTorch on this machine and print a markdown table.

    .venv/bin/python benchmarks/run.py             # full epochs (minutes)
    .venv/bin/python benchmarks/run.py --quick     # 100 steps, extrapolated
    .venv/bin/python benchmarks/run.py --profile   # per-layer times of a step

For the chapter CNN (Adam) and the 784-256-64-10 MLP (SGD), at batch sizes
64 and 256: the time of one training epoch over 60,000 images, the
inference rate over the 10,000 test images, the peak memory of a process
that trains one epoch, and the GFLOP/s of the matrix products beside the
peak a plain matrix product reaches in the same run. Each figure is the
median of several repeats, with the minimum and maximum. nnlib and
PyTorch run in the same process, with the same number of threads,
interleaved (their order alternates between repeats), so that the load of
a shared machine falls on both. Without PyTorch (``pip install -e
.[bench]``), the nnlib figures are reported alone.

Finally, the naive loop convolution (``kernels.conv2d_forward_naive``) is
timed on a few small batches against the im2col path.
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
QUICK_STEPS = 100


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help=f"time {QUICK_STEPS} steps per figure and "
                        "extrapolate to an epoch")
    p.add_argument("--profile", action="store_true",
                   help="only print per-layer forward/backward times of "
                        "one training step")
    p.add_argument("--threads", type=int, default=2,
                   help="threads for NumPy's BLAS and PyTorch (default 2)")
    p.add_argument("--repeats", type=int, default=None,
                   help="repeats per figure (default 3, or 5 with --quick)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    p.add_argument("--infer-batch", type=int, default=256,
                   help="batch size for inference (default 256, as\n"
                        "nnlib.train.predict's)")
    p.add_argument("--models", nargs="+", default=["cnn", "mlp"],
                   choices=["cnn", "mlp"])
    p.add_argument("--data", choices=["mnist", "synthetic"], default="mnist",
                   help="real MNIST if found (default), else synthetic")
    p.add_argument("--passive-wait", action="store_true",
                   help="idle threads of both libraries sleep at once instead\n"
                        "of spinning (OPENBLAS_THREAD_TIMEOUT=4,\n"
                        "OMP_WAIT_POLICY=PASSIVE): on a busy machine the\n"
                        "spinning threads take the CPU from the work")
    p.add_argument("--no-torch", action="store_true",
                   help="skip PyTorch even if it is installed")
    p.add_argument("--no-memory", action="store_true",
                   help="skip the peak-memory subprocesses")
    # internal: one peak-memory measurement, in a fresh process
    p.add_argument("--memory-child", nargs=3, metavar=("MODEL", "BATCH", "LIB"),
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error(f"--threads must be at least 1, got {args.threads}")
    if args.repeats is None:
        args.repeats = 5 if args.quick else 3
    for name in ("repeats", "infer_batch"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, got "
                    f"{getattr(args, name)}")
    if any(b < 1 for b in args.batch_sizes):
        p.error(f"--batch-sizes must be at least 1, got {args.batch_sizes}")
    return args


def pin_threads(n, passive=False):
    """Fix the thread count of every pool NumPy or PyTorch might start.

    The BLAS libraries read these variables once, when they are loaded, so
    this must run before NumPy or PyTorch is imported. By default a
    library's idle threads spin for a while, waiting for the next product;
    ``passive`` makes them sleep at once, in both libraries alike: OpenBLAS
    (NumPy's) through OPENBLAS_THREAD_TIMEOUT, OpenMP (PyTorch's) through
    OMP_WAIT_POLICY.
    """
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    if passive:
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = "4"   # the shortest spin
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def torch_or_none(args):
    """PyTorch with ``args.threads`` threads, or None if absent or skipped."""
    if args.no_torch:
        return None
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(args.threads)
    return torch


# ---------------------------------------------------------------------------
# Summaries and the table
# ---------------------------------------------------------------------------
def summary(values):
    """(median, min, max) of a list of numbers."""
    import numpy as np
    return float(np.median(values)), min(values), max(values)


def cell(values, fmt):
    """'median (min–max)', or the value alone if there is one."""
    med, lo, hi = summary(values)
    if len(values) == 1:
        return f"{med:{fmt}}"
    return f"{med:{fmt}} ({lo:{fmt}}–{hi:{fmt}})"


def ratio(ours, theirs):
    """nnlib's median over PyTorch's, or a dash if PyTorch did not run
    (or its median is 0, as a memory growth can be)."""
    if not theirs or summary(theirs)[0] == 0:
        return "–"
    return f"{summary(ours)[0] / summary(theirs)[0]:.2f}"


def paired(ours, theirs):
    """The ratio within each repeat, nnlib's run over the PyTorch run next
    to it: 'median (min–max)'. The machine's speed drifts between repeats
    and moves both runs of a pair alike, so these spread less than the
    times, and their range shows how firm the ratio is."""
    if not theirs or len(ours) != len(theirs) or len(ours) < 2 \
            or not all(theirs):
        return "–"
    return cell([a / b for a, b in zip(ours, theirs)], ".2f")


def row(label, ours, theirs, fmt):
    theirs_cell = cell(theirs, fmt) if theirs else "not run"
    return f"| {label} | {cell(ours, fmt)} | {theirs_cell} | " \
           f"{ratio(ours, theirs)} | {paired(ours, theirs)} |"


# ---------------------------------------------------------------------------
# Timing, interleaved
# ---------------------------------------------------------------------------
def time_everything(args, W, torch, data):
    """Run every figure ``args.repeats`` times, nnlib and PyTorch in turn.

    Returns {figure key: {"nnlib": [values], "torch": [values]}} where
    epoch figures are seconds per epoch and inference figures images/s.
    """
    import numpy as np
    Xtr, ytr, Xte, _, _ = data
    rng = np.random.default_rng(0)
    results, twins = {}, {}
    for name in args.models:
        nn_model, nn_opt = W.build_nnlib(name)
        pair = {"nnlib": (nn_model, nn_opt)}
        if torch is not None:
            pair["torch"] = W.build_torch(name, nn_model)
        twins[name] = pair
    for r in range(args.repeats):
        libs = ["nnlib", "torch"] if torch is not None else ["nnlib"]
        if r % 2:
            libs.reverse()       # alternate who goes first
        for name in args.models:
            X, Xt = W.inputs(name, Xtr), W.inputs(name, Xte)
            for bs in args.batch_sizes:
                per_epoch = -(-len(X) // bs)
                steps = min(QUICK_STEPS, per_epoch) if args.quick else per_epoch
                for lib in libs:
                    model, opt = twins[name][lib]
                    train = W.train_nnlib if lib == "nnlib" else W.train_torch
                    t = train(model, opt, X, ytr, bs, steps, rng)
                    key = ("train", name, bs)
                    results.setdefault(key, {}).setdefault(lib, []).append(
                        t * per_epoch / steps)
            for lib in libs:
                model, _ = twins[name][lib]
                infer = W.infer_nnlib if lib == "nnlib" else W.infer_torch
                rate = infer(model, Xt, args.infer_batch)
                results.setdefault(("infer", name), {}).setdefault(
                    lib, []).append(rate)
        print(f"  repeat {r + 1}/{args.repeats} done", file=sys.stderr)
    return results


def naive_speedup(W, repeats=3, batch=8):
    """Seconds per batch of ``batch`` images for the naive loop convolution
    and the im2col path, for the CNN's two convolutions (float32)."""
    import numpy as np
    from nnlib import fast_kernels, kernels
    rng = np.random.default_rng(1)
    out = []
    for label, c, f, size in (("conv 1→16 5x5 on 28x28", 1, 16, 28),
                              ("conv 16→32 5x5 on 12x12", 16, 32, 12)):
        x = rng.standard_normal((batch, c, size, size), dtype=np.float32)
        w = rng.standard_normal((f, c, 5, 5), dtype=np.float32)
        b = np.zeros(f, np.float32)
        times = {}
        for fn, n in ((kernels.conv2d_forward_naive, repeats),
                      (fast_kernels.conv2d_forward, 10 * repeats)):
            best = np.inf
            for _ in range(n):
                start = time.perf_counter()
                fn(x, w, b)
                best = min(best, time.perf_counter() - start)
            times[fn.__name__] = best
        out.append((label, times["conv2d_forward_naive"],
                    times["conv2d_forward"]))
    return out


# ---------------------------------------------------------------------------
# Peak memory, one fresh process per configuration
# ---------------------------------------------------------------------------
def reset_peak_rss():
    """Forget the process's peak memory so far (Linux 4.0+): writing 5 to
    /proc/self/clear_refs resets it (VmHWM) to the current size. Returns
    whether it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_kib(reset):
    """The peak resident size in KiB: VmHWM, which ``reset_peak_rss``
    resets, if that worked; else ru_maxrss (which a thread's exit can pin
    to an earlier peak), the peak since the process started."""
    if reset:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory_child(args):
    """Load the data and build the model, then train one epoch (or
    QUICK_STEPS steps) and print the peak memory of the training alone."""
    import numpy as np
    import workloads as W
    name, bs, lib = args.memory_child[0], int(args.memory_child[1]), \
        args.memory_child[2]
    torch = torch_or_none(args) if lib == "torch" else None
    if lib == "torch" and torch is None:
        sys.exit("PyTorch is not installed")
    rng = np.random.default_rng(0)
    Xtr, ytr, *_ = W.load_data(args.data, rng)
    X = W.inputs(name, Xtr)
    model, opt = W.build_nnlib(name)
    train = W.train_nnlib
    if lib == "torch":
        model, opt = W.build_torch(name, model)
        train = W.train_torch
    # Loading the files briefly needs more memory than training keeps:
    # forget that peak, so the figure is the training's.
    reset = reset_peak_rss()
    start = peak_rss_kib(reset)
    steps = QUICK_STEPS if args.quick else -(-len(X) // bs)
    train(model, opt, X, ytr, bs, steps, rng)
    peak = peak_rss_kib(reset)
    print(json.dumps({"start_kib": start, "peak_kib": peak, "reset": reset}))


def peak_memory(args, name, bs, lib):
    """{"start_kib", "peak_kib", "reset"} from a child process; sizes in
    KiB (Linux's unit for ru_maxrss)."""
    cmd = [sys.executable, os.path.join(HERE, "run.py"),
           "--memory-child", name, str(bs), lib,
           "--threads", str(args.threads), "--data", args.data]
    cmd += ["--quick"] * args.quick + ["--passive-wait"] * args.passive_wait
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# --profile
# ---------------------------------------------------------------------------
def profile(args, W, torch, data, steps=30, warmup=5):
    """Median per-layer forward and backward times of one training step."""
    import numpy as np
    from nnlib.losses import CrossEntropyLoss
    Xtr, ytr, *_ = data
    bs = args.batch_sizes[0]
    print(f"{args.threads} thread(s), idle threads "
          f"{'sleep' if args.passive_wait else 'spin'}, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; data: {data[4]}")
    for name in args.models:
        model, opt = W.build_nnlib(name)
        loss_fn = CrossEntropyLoss()
        X = W.inputs(name, Xtr)
        model.input_grad = False        # as fit trains
        layers = model.run_order()       # as model.forward runs them
        n = len(layers)
        fw, bw, other = np.zeros((steps, n)), np.zeros((steps, n)), \
            np.zeros((steps, 2))
        for s in range(warmup + steps):
            i = s - warmup
            xb = X[s * bs:(s + 1) * bs]
            yb = ytr[s * bs:(s + 1) * bs]
            h = xb
            for j, layer in enumerate(layers):
                t = time.perf_counter()
                h = layer.forward(h)
                fw[i, j] = time.perf_counter() - t
            t = time.perf_counter()
            opt.zero_grad()
            loss_fn.forward(h, yb)
            d = loss_fn.backward()
            other[i, 0] = time.perf_counter() - t
            for j in reversed(range(n)):
                t = time.perf_counter()
                d = layers[j].backward(d)
                bw[i, j] = time.perf_counter() - t
            t = time.perf_counter()
            opt.step()
            other[i, 1] = time.perf_counter() - t
        model.input_grad = True
        ms = lambda a: np.median(a, axis=0) * 1e3
        print(f"\n### nnlib {name.upper()}, one training step, batch {bs}, "
              f"{args.threads} BLAS threads, as fit trains "
              f"(median of {steps} steps, ms)\n")
        print("| layer | forward | backward |\n|---|---|---|")
        for j, layer in enumerate(layers):
            where = model.layers.index(layer) \
                if layer in model.layers else "fused:"
            print(f"| {where} {layer!r} | "
                  f"{ms(fw)[j]:.3f} | {ms(bw)[j]:.3f} |")
        print(f"| zero_grad, loss (cross-entropy) | {ms(other)[0]:.3f} | |")
        print(f"| optimizer step | {ms(other)[1]:.3f} | |")
        total = np.median(fw.sum(1) + bw.sum(1) + other.sum(1)) * 1e3
        print(f"| **whole step** | {total:.2f} | |")
        profile_inference(model, W.inputs(name, data[2]), args.infer_batch,
                          steps)
        if torch is not None:
            t_model, t_opt = W.build_torch(name, model)
            rng = np.random.default_rng(0)
            W.train_torch(t_model, t_opt, X, ytr, bs, warmup, rng)
            t = W.train_torch(t_model, t_opt, X, ytr, bs, steps, rng)
            print(f"\nPyTorch, same step: {t / steps * 1e3:.2f} ms "
                  f"(mean of {steps} steps)")


def profile_inference(model, X, bs, batches):
    """Median time of each step of the compiled forward pass (what
    ``predict`` runs) on one batch, one thread, as one of its workers."""
    import numpy as np
    from threadpoolctl import threadpool_limits
    from nnlib.inference import compile_forward
    model.eval()
    forward = compile_forward(model)
    model.train()
    times = np.zeros((batches, len(forward.steps)))
    layer_by_layer = np.zeros(batches)
    with threadpool_limits(1, user_api="blas"):
        for b in range(batches):
            x = batch = X[(b * bs) % (len(X) - bs):][:bs]
            for j, step in enumerate(forward.steps):
                t = time.perf_counter()
                x = step.run(x.copy() if j == 0 and step.in_place else x)
                times[b, j] = time.perf_counter() - t
            model.eval()
            t = time.perf_counter()
            model.forward(batch)
            layer_by_layer[b] = time.perf_counter() - t
            model.train()
    ms = np.median(times, axis=0) * 1e3
    print(f"\n### nnlib.inference.compile_forward, one batch of {bs}, BLAS "
          f"on one thread, as each of predict's workers runs it (median of "
          f"{batches} batches, ms)\n")
    print("| step | time |\n|---|---|")
    for step, t in zip(forward.steps, ms):
        print(f"| {step.name} | {t:.3f} |")
    print(f"| **whole batch** | {np.median(times.sum(1)) * 1e3:.2f} |")
    print(f"\nThe same batch through the layers' own forward passes in "
          f"evaluation mode: {np.median(layer_by_layer) * 1e3:.2f} ms")


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
def machine():
    """The CPU model name and count, from lscpu when there is one."""
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs"


def versions(torch):
    import numpy as np
    blas = ""
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f" ({cfg['name']} {cfg['version']})"
    except Exception:           # the layout of show_config varies by version
        pass
    v = f"Python {platform.python_version()}, NumPy {np.__version__}{blas}"
    return v + (f", PyTorch {torch.__version__}" if torch else "")


def report(args, W, torch, data, results, memory, peaks, naive, load):
    label = data[4]
    mode = (f"--quick: {QUICK_STEPS} steps timed per figure and scaled to "
            "a full epoch" if args.quick else "full epochs")
    cmd = " ".join(["benchmarks/run.py"] + sys.argv[1:])
    print(f"\n## nnlib vs PyTorch, {time.strftime('%Y-%m-%d %H:%M')}\n")
    print(f"- command: `.venv/bin/python {cmd}`")
    wait = "sleep at once (--passive-wait)" if args.passive_wait else \
        "spin as the libraries' defaults have them"
    both = " for both" if torch is not None else ""
    print(f"- machine: {machine()}; {args.threads} thread(s){both}; idle "
          f"threads {wait}")
    print(f"- load average (1 min) at start and end: {load[0]:.1f}, "
          f"{os.getloadavg()[0]:.1f}; a load above the number of CPUs means "
          "other programs shared them")
    print(f"- versions: {versions(torch)}")
    print(f"- data: {label}; {mode}; median (min–max) of "
          f"{args.repeats} repeat(s), interleaved")
    for name in args.models:
        print(f"- {W.DESCRIPTION[name]}")
    if torch is None:
        print("- PyTorch is not installed (or --no-torch): nnlib only. "
              "`pip install -e .[bench]` adds it.")
    else:
        for name in args.models:
            nn_model, _ = W.build_nnlib(name)
            t_model, _ = W.build_torch(name, nn_model)
            diff = W.max_logit_difference(name, nn_model, t_model, data[2])
            print(f"- same network check ({name.upper()}): largest |logit "
                  f"difference| nnlib vs PyTorch = {diff:.1e}")
    print("\n| figure | nnlib | PyTorch | nnlib / PyTorch | the same, "
          "repeat by repeat |")
    print("|---|---|---|---|---|")
    for name in args.models:
        for bs in args.batch_sizes:
            r = results[("train", name, bs)]
            print(row(f"{name.upper()} training epoch, batch {bs} (s)",
                      r["nnlib"], r.get("torch"), ".2f"))
        r = results[("infer", name)]
        print(row(f"{name.upper()} inference, 10,000 test images "
                  f"(images/s, batch {args.infer_batch})", r["nnlib"],
                  r.get("torch"), ",.0f"))
    for name in args.models:
        fwd, bwd = peaks["flops"][name]
        for bs in args.batch_sizes:
            r = results[("train", name, bs)]
            gf = {lib: [(fwd + bwd) * 60000 / t / 1e9 for t in v]
                  for lib, v in r.items()}
            print(row(f"{name.upper()} training GFLOP/s, batch {bs}",
                      gf["nnlib"], gf.get("torch"), ".1f"))
    for (name, bs), m in memory.items():
        mb = {lib: [v["peak_kib"] / 1024] for lib, v in m.items()}
        print(row(f"{name.upper()} training peak memory, batch {bs} (MB)",
                  mb["nnlib"], mb.get("torch"), ",.0f"))
        mb = {lib: [(v["peak_kib"] - v["start_kib"]) / 1024]
              for lib, v in m.items()}
        print(row(f"{name.upper()} training memory growth, batch {bs} (MB)",
                  mb["nnlib"], mb.get("torch"), ",.0f"))
    peak = f"{peaks['numpy']:.0f} GFLOP/s (NumPy)"
    if "torch" in peaks:
        peak += f", {peaks['torch']:.0f} GFLOP/s (PyTorch)"
    print(f"\nMatrix-product peak in this run (float32, 1024x1024, best of "
          f"10): {peak}. GFLOP/s count only the matrix products "
          "(convolutions and linear layers): ", end="")
    print(", ".join(f"{n.upper()} {f / 1e6:.2f} MFLOP forward + "
                    f"{b / 1e6:.2f} backward per image"
                    for n, (f, b) in peaks["flops"].items()) + ".")
    if memory:
        reset = all(v["reset"] for m in memory.values() for v in m.values())
        print("Peak memory: the largest resident size (VmHWM) of a fresh "
              "process while it trains one "
              f"{'100-step run' if args.quick else 'epoch'}, whole process "
              "(Python, the libraries, the training data as float32, the "
              "model and its buffers); "
              + ("the peak of loading the files was reset before training. "
                 if reset else "it includes loading the files (the peak "
                 "could not be reset on this system: ru_maxrss). ")
              + "The second memory row is the growth during training, "
              "above the size at its start.")
    print("\nThe naive loop convolution against the im2col path "
          "(forward, float32; best of 3 and of 30 runs):\n")
    print("| convolution | batch | naive loops (s) | im2col (ms) | speed-up |")
    print("|---|---|---|---|---|")
    for label, slow, fast in naive:
        print(f"| {label} | 8 | {slow:.2f} | {fast * 1e3:.2f} | "
              f"{slow / fast:,.0f}x |")


def main(argv=None):
    args = parse_args(argv)
    pin_threads(args.threads, args.passive_wait)
    sys.path.insert(0, HERE)
    if args.memory_child:
        return memory_child(args)
    import numpy as np
    import workloads as W
    torch = torch_or_none(args)
    if args.profile:
        data = W.load_data(args.data, np.random.default_rng(0))
        return profile(args, W, torch, data)
    print("benchmark: " + ("quick run" if args.quick else "full epochs; "
          "this takes several minutes (--quick for a short run)"),
          file=sys.stderr)
    load = os.getloadavg()
    data = W.load_data(args.data, np.random.default_rng(0))
    peaks = {"numpy": W.matmul_peak()}
    if torch is not None:
        peaks["torch"] = W.matmul_peak_torch()
    results = time_everything(args, W, torch, data)
    peaks["numpy"] = max(peaks["numpy"], W.matmul_peak())
    if torch is not None:
        peaks["torch"] = max(peaks["torch"], W.matmul_peak_torch())
    peaks["flops"] = {name: W.matmul_flops(W.build_nnlib(name)[0],
                                           W.inputs(name, data[0]))
                      for name in args.models}
    memory = {}
    if not args.no_memory:
        libs = ["nnlib"] + (["torch"] if torch is not None else [])
        for name in args.models:
            for bs in args.batch_sizes:
                memory[(name, bs)] = {lib: peak_memory(args, name, bs, lib)
                                      for lib in libs}
        print("  peak memory measured", file=sys.stderr)
    naive = naive_speedup(W)
    report(args, W, torch, data, results, memory, peaks, naive, load)


if __name__ == "__main__":
    main()
