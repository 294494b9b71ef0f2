"""The live view: text outside Jupyter, widgets inside, one final figure."""
import base64

import numpy as np
import pytest
from matplotlib.figure import Figure

from nnlib import live
from nnlib.layers import Linear, ReLU, Sequential
from nnlib.live import LiveBoard, LiveView, TextProgress
from nnlib.losses import CrossEntropyLoss
from nnlib.optim import SGD
from nnlib.train import Callback, fit


def blobs(n, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = 3.0 * y[:, None] + rng.standard_normal((n, 2))
    return X.astype(np.float32), y


def run(callbacks, lr=0.1, num_epochs=2, n=200, seed=0):
    """Train a small network on 200 points: 7 steps of 32 an epoch."""
    rng = np.random.default_rng(seed)
    model = Sequential(Linear(2, 8, rng=rng), ReLU(), Linear(8, 2, rng=rng))
    X, y = blobs(n, seed)
    return fit(model, CrossEntropyLoss(), SGD(model.parameters(), lr),
               (X, y), (X[:50], y[:50]), num_epochs=num_epochs,
               batch_size=32, rng=rng, callbacks=callbacks)


class StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_batch_end(self, state):
        if state.step == self.step:
            raise KeyboardInterrupt


class FakeHandle:
    def __init__(self):
        self.updates = []

    def update(self, obj, **kwargs):
        self.updates.append((obj, kwargs))


@pytest.fixture
def shown(monkeypatch):
    """Pretend to be in a Jupyter kernel; record what is displayed."""
    calls = []

    def display(obj, **kwargs):
        handle = FakeHandle()
        calls.append((obj, kwargs, handle))
        return handle

    monkeypatch.setattr(live, "_display", display)
    monkeypatch.setattr(live, "_in_kernel", lambda: True)
    return calls


def is_png_bundle(bundle):
    return (base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")
            and bundle["text/plain"].startswith("<Figure"))


def labels(figure):
    """The legend's entries."""
    return [text.get_text() for text in figure.axes[0].get_legend().texts]


def test_outside_jupyter_prints_a_bar_and_a_line_per_epoch(capsys):
    view = LiveView()
    history = run([view])
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line[:17] for line in lines] == ["epoch 1/2  train ",
                                             "epoch 2/2  train "]
    assert f"acc {history.val_acc[-1]:.2%}  " in lines[-1]
    assert "14/14" in err                       # the tqdm bar, at its end
    assert view.board.widgets is False


def test_the_final_figure_holds_the_curves():
    view = LiveView("demo", widgets=False)
    history = run([view], num_epochs=3)
    assert isinstance(view.figure, Figure)
    loss_axes, acc_axes = view.figure.axes
    train, val = loss_axes.lines
    assert train.get_label() == "train" and val.get_label() == "validation"
    # one training point a step here (fewer than 50 steps an epoch)
    np.testing.assert_allclose(train.get_ydata(), history.step_loss)
    np.testing.assert_allclose(np.asarray(train.get_xdata())[[6, 13, 20]],
                               [1, 2, 3])
    assert list(val.get_xdata()) == [1, 2, 3]
    np.testing.assert_allclose(val.get_ydata(), history.val_loss)
    np.testing.assert_allclose(acc_axes.lines[1].get_ydata(),
                               100 * np.array(history.val_acc))
    assert view.figure._suptitle.get_text() == "demo"


def test_training_points_are_means_of_a_few_steps(monkeypatch):
    monkeypatch.setattr(live, "POINTS_PER_EPOCH", 3)     # 7 steps: means of 2
    view = LiveView(widgets=False)
    history = run([view], num_epochs=1)
    x, y = view.figure.axes[0].lines[0].get_data()
    steps = history.step_loss
    np.testing.assert_allclose(x, np.array([2, 4, 6, 7]) / 7)
    np.testing.assert_allclose(y, [np.mean(steps[0:2]), np.mean(steps[2:4]),
                                   np.mean(steps[4:6]), steps[6]])


def test_in_a_kernel_the_final_figure_is_one_png(shown, capsys):
    view = LiveView(widgets=False)
    run([view])
    assert len(shown) == 1
    bundle, kwargs, _ = shown[0]
    assert kwargs["raw"] is True and is_png_bundle(bundle)
    # drawn at twice the pixels, shown at its size
    png = base64.b64decode(bundle["image/png"])
    size = kwargs["metadata"]["image/png"]
    assert int.from_bytes(png[16:20], "big") // 2 == size["width"]
    # no height: a fixed one would squash the figure in a narrow column
    assert set(size) == {"width"}
    # fits the book's column (about 820 px) with no scaling down
    assert 500 < size["width"] <= 820


def test_widget_dashboard_is_replaced_by_the_final_image(shown):
    view = LiveView(widgets=True, every_seconds=0)
    run([view])
    assert len(shown) == 1                          # the dashboard, once
    box, kwargs, handle = shown[0]
    assert kwargs == {"display_id": True}
    dashboard = view.board._dashboard
    assert box is dashboard.box
    assert dashboard.bar.value == dashboard.bar.max == 14
    assert "epoch 2/2" in dashboard.text.value
    # at the end: the dashboard's output becomes the final figure
    [(bundle, update_kwargs)] = handle.updates
    assert update_kwargs["raw"] is True and is_png_bundle(bundle)
    assert update_kwargs["metadata"]["image/png"]["width"] > 0
    assert dashboard.image.value == b""             # no stale image kept
    assert all(w.comm is None for w in (box, dashboard.image, dashboard.bar))


def test_redraws_are_throttled(shown, monkeypatch):
    draws = []
    monkeypatch.setattr(LiveBoard, "_draw",    # count, and skip the drawing
                        lambda self, final=False: draws.append(1) or b"")
    run([LiveView(widgets=True, every_seconds=1e6)])
    assert len(draws) == 1                          # the final figure only
    draws.clear()
    monkeypatch.setattr(live, "DRAW_BUDGET", 1.0)   # no pause after a draw
    run([LiveView(widgets=True, every_seconds=0)])
    assert len(draws) == 14 + 2 + 1                 # steps, epoch ends, final


@pytest.mark.parametrize("widgets", [False, True])
def test_interrupted_training_leaves_the_final_figure(shown, widgets):
    view = LiveView(widgets=widgets)
    history = run([view, StopAt(step=3)], num_epochs=3)
    assert history.stop_reason == "interrupted"
    assert labels(view.figure) == ["train (interrupted)"]
    bundle = shown[0][0] if not widgets else shown[0][2].updates[0][0]
    assert is_png_bundle(bundle)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_leaves_the_final_figure():
    view = LiveView(widgets=False)
    history = run([view], lr=1e9)
    assert history.stop_reason == "nan"
    assert isinstance(view.figure, Figure)
    assert labels(view.figure)[0] == "train (loss became nan)"


def test_a_board_compares_runs_on_the_same_axes(capsys):
    with LiveBoard("learning rates", widgets=False) as board:
        for lr in (0.01, 0.1):
            run([board.run(f"lr={lr}")], lr=lr)
    # one entry a run, then the two line styles
    assert labels(board.figure) == ["lr=0.01", "lr=0.1",
                                    "training (mean of a few steps)",
                                    "validation (end of each epoch)"]
    colours = {line.get_color() for line in board.figure.axes[1].lines}
    assert len(colours) == 2
    out = capsys.readouterr().out
    assert "lr=0.01: epoch 2/2" in out and "lr=0.1: epoch 1/2" in out
    with pytest.raises(RuntimeError, match="closed"):
        board.run("late")


def test_one_ctrl_c_stops_a_loop_of_runs(shown):
    started = []
    with pytest.raises(KeyboardInterrupt):
        with LiveBoard(metrics=("acc",), widgets=False) as board:
            for lr in (0.01, 0.1, 1.0):
                started.append(lr)
                run([board.run(f"lr={lr}"), StopAt(step=2)], lr=lr)
    assert started == [0.01, 0.1] and len(board.runs) == 1
    assert len(board.figure.axes) == 1
    assert len(shown) == 1 and is_png_bundle(shown[0][0])


def test_a_board_without_runs_shows_nothing(shown):
    with LiveBoard() as board:
        pass
    assert board.figure is None and shown == []


def test_unknown_metric():
    with pytest.raises(ValueError, match="metrics must be some of"):
        LiveView(metrics=("loss", "speed"))


def test_text_progress_alone(capsys):
    run([TextProgress("mlp")], num_epochs=1)
    out, err = capsys.readouterr()
    assert out.startswith("mlp: epoch 1/1  train loss")
    assert "mlp: epoch 1/1" in err


def test_an_executed_notebook_keeps_one_image_and_no_stale_widget():
    """What the book stores: run a cell in a real kernel, as the build does."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    code = """\
import numpy as np
from nnlib.live import LiveView
from nnlib.models import mlp
from nnlib.losses import CrossEntropyLoss
from nnlib.optim import SGD
from nnlib.train import fit
rng = np.random.default_rng(0)
X = rng.standard_normal((512, 2)).astype(np.float32)
y = (X.sum(axis=1) > 0).astype(np.int64)
model = mlp((2, 8, 2), rng=rng)
view = LiveView("in a kernel", every_seconds=0)
history = fit(model, CrossEntropyLoss(), SGD(model.parameters(), 0.1),
              (X, y), (X, y), num_epochs=2, batch_size=16, rng=rng,
              callbacks=[view])
assert view.board._dashboard is not None      # the widget path ran"""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    [output] = nb.cells[0].outputs
    assert output.output_type == "display_data"
    assert is_png_bundle(output.data)
    assert output.data["text/plain"] == "<Figure: in a kernel>"
    # twice the pixels, shown at its size
    png = base64.b64decode(output.data["image/png"])
    width = output.metadata["image/png"]["width"]
    assert int.from_bytes(png[16:20], "big") // 2 == width
    state = nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]
    images = [model for model in state["state"].values()
              if model["model_name"] == "ImageModel"]
    assert len(images) == 1
    assert not images[0].get("buffers") or all(
        not buffer["data"] for buffer in images[0]["buffers"])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # the NaN run
def test_final_legend_of_many_runs_names_each_run_once(capsys):
    with LiveBoard("five runs", widgets=False) as board:
        run([board.run("diverges")], lr=1e9)     # stops on NaN, no validation
        for i in range(4):
            run([board.run(f"run {i}")], seed=i)
    legend = board.axes["loss"].get_legend()
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels == ["diverges (loss became nan)", "run 0", "run 1",
                      "run 2", "run 3", "training (mean of a few steps)",
                      "validation (end of each epoch)"]
    # below the charts, over no curve, in text as large as the labels
    renderer = board.figure.canvas.get_renderer()
    box = legend.get_window_extent(renderer)
    assert box.y1 < min(ax.bbox.y0 for ax in board.axes.values())
    assert all(text.get_fontsize() >= 12 for text in legend.get_texts())


def test_after_one_epoch_the_validation_result_is_written_out(shown):
    view = LiveView(widgets=False)
    history = run([view], num_epochs=1)
    loss_axes, acc_axes = view.figure.axes
    texts = [t.get_text() for t in acc_axes.texts]
    assert texts == [f"validation\n{100 * history.val_acc[-1]:.2f}%"]
    # the point sits inside the axes, not on its right edge
    assert acc_axes.get_xlim()[1] > 1
    assert "after epoch 0.5" in acc_axes.get_ylabel()
