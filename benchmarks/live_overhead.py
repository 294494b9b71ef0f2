"""How much does the live dashboard slow training of the chapter CNN?

Times ``fit`` of ``seed_cnn`` (batch 64) on MNIST-shaped random images,
with no callback and with ``LiveView``, alternating, and prints the
overhead, and the share of the time spent inside LiveView's own hooks
(drawing, widget messages), which depends less on the load of a shared
machine. The timing runs inside a Jupyter kernel (executed with nbclient,
as the book is built), so the widgets send real messages to a frontend;
outside a kernel ``LiveView`` would only print text.

    python benchmarks/live_overhead.py                  # 3 epochs of 50 steps
    python benchmarks/live_overhead.py --steps 938 --epochs 1   # a full epoch

The machine is shared: compare the two numbers of one run, not runs.
"""
import argparse
import json

import nbclient
import nbformat

KERNEL_CODE = """
import json, time
import numpy as np
from nnlib.live import LiveView
from nnlib.losses import CrossEntropyLoss
from nnlib.models import seed_cnn
from nnlib.optim import SGD
from nnlib.train import Callback, fit

rng = np.random.default_rng(0)
n = {steps} * 64
X = rng.standard_normal((n, 1, 28, 28), dtype=np.float32)
y = rng.integers(0, 10, n)
X_val, y_val = X[:1000], y[:1000]

class Timed(Callback):
    # runs another callback's hooks and adds up the time they take

    def __init__(self, inner):
        self.inner, self.seconds = inner, 0.0

    def _time(self, hook, state):
        start = time.perf_counter()
        getattr(self.inner, hook)(state)
        self.seconds += time.perf_counter() - start

    def on_train_begin(self, state): self._time("on_train_begin", state)
    def on_epoch_begin(self, state): self._time("on_epoch_begin", state)
    def on_batch_end(self, state): self._time("on_batch_end", state)
    def on_epoch_end(self, state): self._time("on_epoch_end", state)
    def on_train_end(self, state): self._time("on_train_end", state)

def run(callbacks):
    model = seed_cnn(rng=np.random.default_rng(1))
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
    start = time.perf_counter()
    fit(model, CrossEntropyLoss(), opt, (X, y), (X_val, y_val),
        num_epochs={epochs}, batch_size=64, rng=np.random.default_rng(2),
        callbacks=callbacks)
    return time.perf_counter() - start

run([])   # warm up: caches, BLAS threads
times = {{"none": [], "LiveView": [], "in LiveView": []}}
for _ in range({repeats}):
    times["none"].append(run([]))
    timed = Timed(LiveView("benchmark"))
    times["LiveView"].append(run([timed]))
    times["in LiveView"].append(timed.seconds)
print(json.dumps(times))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=50,
                        help="steps (batches of 64) per epoch")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    code = KERNEL_CODE.format(steps=args.steps, epochs=args.epochs,
                              repeats=args.repeats)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=3600).execute()
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs
                   if o.output_type == "stream" and o.name == "stdout")
    times = json.loads(text.strip().splitlines()[-1])
    base, live = min(times["none"]), min(times["LiveView"])
    inside = [t / total for t, total in zip(times["in LiveView"],
                                            times["LiveView"])]
    print(f"{args.epochs} x {args.steps} steps of batch 64, best of "
          f"{args.repeats}: no callback {base:.2f} s, LiveView {live:.2f} s, "
          f"overhead {100 * (live / base - 1):+.1f}%; time spent in "
          f"LiveView's hooks: {100 * min(inside):.1f}-{100 * max(inside):.1f}%"
          " of fit")
    print("all times (s):", json.dumps(times))


if __name__ == "__main__":
    main()
