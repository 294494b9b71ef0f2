"""Watching training: a live dashboard in Jupyter, plain text elsewhere.

Everything here is a ``Callback`` for ``nnlib.train.fit``; the training loop
does not know about it. In a Jupyter kernel with ``ipywidgets`` installed,
``LiveView`` shows a dashboard that updates as the model trains: a progress
bar with the rate and the time left, the loss and accuracy of the last few
steps and of the last epoch, and their curves (training every few steps,
validation every epoch). Anywhere else (a script, CI, a terminal) it prints a ``tqdm``
progress bar and one line per epoch.

When training ends, however it ends, the dashboard is replaced by one
static image of the curves. The saved notebook then holds a plain PNG, which
the built HTML page and GitHub show without a kernel or JavaScript.

Drawing must not slow training. The curves are drawn in the training
thread, so a redraw costs training time: ``LiveView`` redraws at most every
``every_seconds``, and less often if drawing is slow, so that drawing takes
at most ``DRAW_BUDGET`` (2%) of the time. The per-step work is a few
additions.

``LiveBoard`` puts several runs on the same axes, to compare them live::

    with LiveBoard("Optimisers") as board:
        for name, opt in optimizers.items():
            fit(..., callbacks=[board.run(name)])
"""
import base64
import html
import io
import sys
import time

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from tqdm import tqdm

from . import plots
from .train import Callback

POINTS_PER_EPOCH = 50   # training curve points per epoch (means of steps)
DRAW_BUDGET = 0.02      # largest share of the time spent drawing curves
STATUS_SECONDS = 0.5    # how often the progress line is refreshed
METRICS = {"loss": "loss (log scale)", "acc": "accuracy (%)"}
# The final figure: drawn at twice the pixels and shown at its size (the
# PNG's width and height in the output's metadata), sharp on any screen;
# text in points, at least the size of the book's body text once shown.
FINAL_SCALE = 2
TEXT_SIZE = 12
TICK_SIZE = 11
LEGEND_SIZE = 12
KEY_COLOR = "#555555"   # the legend's keys for "training" and "validation"


def format_epoch(history, num_epochs, i=-1):
    """One line for epoch ``i`` of a history, e.g.
    ``epoch 3/10  train loss 0.0512 acc 98.41%  val loss 0.0450 acc 98.62%
    12.3 s``."""
    h = history
    line = (f"epoch {h.epoch[i]}/{num_epochs}  train loss "
            f"{h.train_loss[i]:.4f} acc {h.train_acc[i]:.2%}")
    if h.val_loss:
        line += f"  val loss {h.val_loss[i]:.4f} acc {h.val_acc[i]:.2%}"
    return line + f"  {h.epoch_time[i]:.1f} s"


class TextProgress(Callback):
    """A ``tqdm`` progress bar over all steps, and one line per epoch.

    The bar (on stderr) shows the running loss and accuracy of the epoch;
    the epoch lines go to stdout. ``name``, if given, starts each line.
    """

    def __init__(self, name=None):
        self.prefix = f"{name}: " if name else ""

    def on_train_begin(self, state):
        self.bar = tqdm(total=state.total_steps, unit="step", file=sys.stderr,
                        desc=f"{self.prefix}epoch 1/{state.num_epochs}",
                        mininterval=0.5, dynamic_ncols=True)
        self._every = max(1, state.steps_per_epoch // POINTS_PER_EPOCH)

    def on_epoch_begin(self, state):
        self.bar.set_description(
            f"{self.prefix}epoch {state.epoch}/{state.num_epochs}",
            refresh=False)
        self._loss = self._acc = 0.0

    def on_batch_end(self, state):
        self._loss += state.batch_loss
        self._acc += state.batch_acc
        if state.step % self._every == 0:    # cheap enough, not every step
            self.bar.set_postfix_str(
                f"loss {self._loss / state.step:.4f} "
                f"acc {self._acc / state.step:.2%}", refresh=False)
        self.bar.update()

    def on_epoch_end(self, state):
        self.bar.write(self.prefix + format_epoch(state.history,
                                                  state.num_epochs),
                       file=sys.stdout)

    def on_train_end(self, state):
        self.bar.close()


class LiveBoard:
    """Curves of one or more training runs on shared axes, drawn live.

    ``board.run(name)`` returns the callback of one run, to pass to
    ``fit``. ``close()`` (or leaving a ``with`` block) ends the live view
    and leaves the final figure, kept as ``board.figure``; in Jupyter it is
    shown as a static image.

    ``metrics`` chooses the charts: ``('loss', 'acc')``, ``('loss',)`` or
    ``('acc',)``. ``widgets`` chooses the display: ``None`` uses the widget
    dashboard in a Jupyter kernel with ipywidgets and text elsewhere,
    ``True``/``False`` force one or the other.

    After a run is interrupted (Ctrl-C), the next ``board.run`` raises
    ``KeyboardInterrupt`` again, so that one Ctrl-C stops a loop of runs.
    """

    def __init__(self, title=None, *, metrics=("loss", "acc"),
                 every_seconds=1.0, widgets=None):
        self.title, self.metrics = title, _check_metrics(metrics)
        self.every_seconds = every_seconds
        self.widgets = _widgets_available() if widgets is None else widgets
        self.runs = []
        self.figure = None
        self.closed = False
        self.interrupted = False
        self._dashboard = None
        self._next_status = self._next_draw = 0.0

    def run(self, name=None):
        """The callback for one more run, drawn in the next colour."""
        if self.interrupted:
            raise KeyboardInterrupt("an earlier run on this board was "
                                    "interrupted")
        if self.closed:
            raise RuntimeError("this board is closed; make a new LiveBoard")
        return self._add(_Run(name or f"run {len(self.runs) + 1}"))

    def close(self):
        """Stop the live view; show and return the final figure."""
        if self.closed:
            return self.figure
        self.closed = True
        if not self.runs:
            return None
        png = plots.light_png(self._draw(final=True))
        bundle = {"image/png": base64.b64encode(png).decode("ascii"),
                  "text/plain": f"<Figure: {self._caption()}>"}
        metadata = {"image/png": _display_size(png)}
        if self._dashboard is not None:
            self._dashboard.finish(bundle, metadata)
        elif _in_kernel():
            _display(bundle, raw=True, metadata=metadata)
        return self.figure

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- called by the runs -----------------------------------------------
    def _add(self, run):
        run.board = self
        self.runs.append(run)
        return run

    def _begin(self, run, state):
        if not self.widgets:
            run.text = TextProgress(run.name)
            return
        if self._dashboard is None:
            self._dashboard = _Dashboard()
        self._dashboard.start(state.total_steps)
        self._next_status = 0.0
        self._next_draw = time.perf_counter() + self.every_seconds

    def _tick(self, run, state, epoch_end=False):
        """Refresh what is due: the progress line often, the curves rarely."""
        now = time.perf_counter()
        if now >= self._next_status or epoch_end:
            self._dashboard.progress(run, state, now, epoch_end)
            self._next_status = now + STATUS_SECONDS
        if now >= self._next_draw:
            self._dashboard.image.value = self._draw()
            cost = time.perf_counter() - now
            self._next_draw = now + max(self.every_seconds,
                                        cost / DRAW_BUDGET)

    def _end(self, run, state):
        if state.history.stop_reason == "interrupted":
            self.interrupted = True

    # -- the figure -------------------------------------------------------
    def _caption(self):
        return self.title or "training curves"

    def _draw(self, final=False):
        """Update the curves and render the figure as PNG bytes. The final
        image is drawn at twice the pixels (``FINAL_SCALE``), to be shown at
        its size, and cropped to what is drawn, so no label is cut off (too
        slow to do while training)."""
        if self.figure is None:
            self._make_figure()
        started = [run for run in self.runs if run.history is not None]
        for i, run in enumerate(started):
            run.update_lines(self.axes, color=f"C{i % 10}")
        num_epochs = max(max(run.num_epochs for run in started), 1)
        for ax in self.axes.values():
            ax.relim()
            ax.autoscale_view(scalex=False)
            # a margin on the right, so the last validation point (at the
            # last epoch) is not cut in half by the axis' edge
            ax.set_xlim(0, num_epochs * 1.04)
        if final and "acc" in self.axes:
            _zoom_to_late_accuracy(self.axes["acc"])
        if final and num_epochs == 1 and len(started) == 1:
            started[0].label_last_validation(self.axes)
        first = self.axes[self.metrics[0]]
        if first.lines:
            handles = _legend_handles(started)
            if final:
                # below the charts, in columns: readable, and over no curve
                first.legend(handles=handles, fontsize=LEGEND_SIZE,
                             loc="upper center", frameon=False,
                             # columns: no wider than the charts
                             ncols=2 if len(handles) <= 4 else 3,
                             bbox_to_anchor=(0.5, -0.02),
                             bbox_transform=self.figure.transFigure)
            else:
                first.legend(handles=handles, fontsize="small")
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png",
                            dpi=self.figure.dpi * (FINAL_SCALE if final
                                                   else 1),
                            bbox_inches="tight" if final else None)
        return buffer.getvalue()

    def _make_figure(self):
        self.figure = Figure(figsize=(4.0 * len(self.metrics), 3.4))
        FigureCanvasAgg(self.figure)
        # Fixed margins while live: an automatic layout costs a lot per draw.
        self.figure.subplots_adjust(left=0.1, right=0.98, bottom=0.16,
                                    top=0.86, wspace=0.32)
        axes = self.figure.subplots(1, len(self.metrics), squeeze=False)[0]
        self.axes = dict(zip(self.metrics, axes))
        for metric, ax in self.axes.items():
            ax.set_xlabel("epoch", fontsize=TEXT_SIZE)
            ax.set_ylabel(METRICS[metric], fontsize=TEXT_SIZE)
            ax.tick_params(labelsize=TICK_SIZE)
            ax.grid(alpha=0.3)
        if "loss" in self.axes:
            plots.log_y(self.axes["loss"])
        self.figure.suptitle(self._caption(), fontsize=TEXT_SIZE + 1)


class _Run(Callback):
    """The callback of one run on a board: collects the points of its curves.

    Training points are means over a few steps (``POINTS_PER_EPOCH`` points
    an epoch), placed at the fraction of the epoch reached; validation
    points sit at the end of each epoch.
    """

    def __init__(self, name=None):
        self.name = name
        self.board = self.history = self.text = None
        self.lines = {}

    def on_train_begin(self, state):
        self.history = state.history
        self.num_epochs = state.num_epochs
        self.train = {"x": [], "loss": [], "acc": []}
        self._every = max(1, state.steps_per_epoch // POINTS_PER_EPOCH)
        self._sum_loss = self._sum_acc = 0.0
        self._count = 0
        self.board._begin(self, state)
        if self.text:
            self.text.on_train_begin(state)

    def on_epoch_begin(self, state):
        if self.text:
            self.text.on_epoch_begin(state)

    def on_batch_end(self, state):
        self._sum_loss += state.batch_loss
        self._sum_acc += state.batch_acc
        self._count += 1
        if self._count == self._every:
            self._add_point(state)
        if self.text:
            self.text.on_batch_end(state)
        else:
            self.board._tick(self, state)

    def on_epoch_end(self, state):
        if self._count:
            self._add_point(state)
        if self.text:
            self.text.on_epoch_end(state)
        else:
            self.board._tick(self, state, epoch_end=True)

    def on_train_end(self, state):
        if self.text:
            self.text.on_train_end(state)
        self.board._end(self, state)

    def _add_point(self, state):
        self.train["x"].append(state.epoch - 1
                               + state.step / state.steps_per_epoch)
        self.train["loss"].append(self._sum_loss / self._count)
        self.train["acc"].append(100 * self._sum_acc / self._count)
        self._sum_loss = self._sum_acc = 0.0
        self._count = 0

    def update_lines(self, axes, color):
        """Give this run's lines on ``axes`` their latest points."""
        h = self.history
        val = {"loss": h.val_loss, "acc": [100 * a for a in h.val_acc]}
        name = f"{self.name} " if self.name else ""
        stopped = {"nan": " (loss became nan)", "interrupted": " (interrupted)",
                   "stopped": " (stopped early)"}
        note = stopped.get(h.stop_reason, "")
        for metric, ax in axes.items():
            if metric not in self.lines:
                self.lines[metric] = (
                    ax.plot([], [], color=color, lw=1, alpha=0.6)[0],
                    ax.plot([], [], "o-", color=color, ms=4)[0])
            train, val_line = self.lines[metric]
            train.set_data(self.train["x"], self.train[metric])
            train.set_label(name + "train" + note)
            val_line.set_data(h.epoch[:len(val[metric])], val[metric])
            # A line without a label stays out of the legend.
            val_line.set_label(name + "validation" + note
                               if val[metric] else "")

    def label_last_validation(self, axes):
        """Write the last validation value beside its point: after one
        epoch, the validation curve is that one point."""
        for metric, (_, val_line) in self.lines.items():
            x, y = val_line.get_data()
            if len(y):
                text = (f"{y[-1]:.2f}%" if metric == "acc"
                        else f"{y[-1]:.3g}")
                axes[metric].annotate(
                    f"validation\n{text}", (x[-1], y[-1]),
                    xytext=(-8, 0), textcoords="offset points",
                    ha="right", va="center", fontsize=TICK_SIZE,
                    color=val_line.get_color())


class LiveView(_Run):
    """The live dashboard of one training run: pass it to ``fit``.

    In Jupyter it shows a widget dashboard that updates as the model
    trains and, when training ends, one static figure of the curves
    (``view.figure``); elsewhere it prints a progress bar and a line per
    epoch. See ``LiveBoard`` for ``title``, ``every_seconds``, ``metrics``
    and ``widgets``.
    """

    def __init__(self, title=None, *, metrics=("loss", "acc"),
                 every_seconds=1.0, widgets=None):
        super().__init__()
        self._options = dict(title=title, metrics=_check_metrics(metrics),
                             every_seconds=every_seconds, widgets=widgets)

    @property
    def figure(self):
        """The final figure (a matplotlib Figure), once training has ended."""
        return self.board.figure if self.board else None

    def on_train_begin(self, state):
        LiveBoard(**self._options)._add(self)   # a fresh board for each fit
        super().on_train_begin(state)

    def on_train_end(self, state):
        super().on_train_end(state)
        self.board.close()


class _Dashboard:
    """The widgets: a progress bar, two lines of text, the curves."""

    def __init__(self):
        import ipywidgets as widgets

        self.bar = widgets.IntProgress(min=0, max=1)
        self.text = widgets.HTML()
        self.image = widgets.Image(format="png")
        self.box = widgets.VBox([self.bar, self.text, self.image])
        self.handle = _display(self.box, display_id=True)
        self.last_epoch = ""

    def start(self, total_steps):
        self.bar.max, self.bar.value = max(total_steps, 1), 0
        self.last_epoch = ""
        self._begin = time.perf_counter()

    def progress(self, run, state, now, epoch_end):
        """Show the steps done, the rate, the time left, the last epoch."""
        done = (state.epoch - 1) * state.steps_per_epoch + state.step
        rate = done / max(now - self._begin, 1e-9)
        left = (state.total_steps - done) / rate
        name = f"{run.name}  " if run.name else ""
        if epoch_end:
            self.last_epoch = name + format_epoch(state.history,
                                                  state.num_epochs)
        self.bar.value = done
        status = (f"{name}epoch {state.epoch}/{state.num_epochs}  step "
                  f"{state.step}/{state.steps_per_epoch}  ")
        if run.train["x"]:          # the mean of the last few steps
            status += (f"loss {run.train['loss'][-1]:.4f}  "
                       f"acc {run.train['acc'][-1]:.1f}%  ")
        status += f"{rate:.0f} steps/s  {tqdm.format_interval(left)} left"
        self.text.value = ('<pre style="margin: 0; line-height: 1.4">'
                           f"{html.escape(status)}\n"
                           f"{html.escape(self.last_epoch)}</pre>")

    def finish(self, bundle, metadata=None):
        """Replace the dashboard by the final image, and close the widgets."""
        # An empty image first, so the saved notebook's widget state keeps
        # no stale copy of the last live PNG.
        self.image.value = b""
        self.handle.update(bundle, raw=True, metadata=metadata or {})
        for widget in (self.box, self.bar, self.text, self.image):
            widget.close()


def _zoom_to_late_accuracy(ax):
    """Zoom the accuracy axis to the points from the middle of the first
    epoch on. Every run climbs from about 10% in its first steps; left on
    the axis, that climb squeezes the differences between runs, which show
    at the top, into a few pixels."""
    late = [y for line in ax.lines
            for x, y in zip(*line.get_data()) if x >= 0.5]
    if late:
        low, high = min(late), max(late)
        pad = max(0.05 * (high - low), 0.1)
        ax.set_ylim(low - pad, min(high + pad, 100.5))
        ax.set_ylabel(METRICS["acc"] + ", after epoch 0.5", fontsize=TEXT_SIZE)


def _legend_handles(runs):
    """The legend's entries. One nameless run: its two lines. Named runs:
    one entry a run (its colour), then two keys in grey for the line styles,
    "training" and "validation", rather than two entries a run."""
    if len(runs) == 1 and not runs[0].name:
        return [line for line in next(iter(runs[0].lines.values()))
                if line.get_label()]
    handles = []
    for run in runs:
        train, val_line = next(iter(run.lines.values()))
        label = train.get_label()
        if label.endswith(" train"):
            label = label[:-len(" train")]
        else:       # "name train (note)"
            label = label.replace(" train (", " (", 1)
        handles.append(Line2D([], [], color=train.get_color(), lw=2.5,
                              label=label))
    handles.append(Line2D([], [], color=KEY_COLOR, lw=1, alpha=0.6,
                          label="training (mean of a few steps)"))
    if any(run.history.val_loss for run in runs):
        handles.append(Line2D([], [], color=KEY_COLOR, marker="o", ms=4,
                              label="validation (end of each epoch)"))
    return handles


def _display_size(png):
    """The width at which to show a final PNG: its pixels divided by
    ``FINAL_SCALE``. No height: the page keeps the proportions when it
    scales a figure down to a narrow column."""
    return {"width": plots.png_size(png)[0] // FINAL_SCALE}


def _check_metrics(metrics):
    metrics = tuple(metrics)
    if not metrics or not set(metrics) <= set(METRICS):
        raise ValueError(f"metrics must be some of {tuple(METRICS)}, "
                         f"got {metrics!r}")
    return metrics


def _in_kernel():
    """Whether this code runs in a Jupyter (IPython) kernel."""
    # A kernel has imported IPython already; a script need not pay for it.
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython else None
    return shell is not None and hasattr(shell, "kernel")


def _widgets_available():
    if not _in_kernel():
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def _display(obj, **kwargs):
    """IPython's ``display``, imported only when something is shown."""
    from IPython.display import display
    return display(obj, **kwargs)
