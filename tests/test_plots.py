"""The chapters' figures, drawn from small synthetic arrays.

Each figure must have the panels it promises and draw without a single
warning (the numbers behind them are tested in test_metrics.py); and no
figure may stay registered with pyplot (that is what keeps a notebook from
showing it twice).
"""
import io
import os

os.environ.setdefault("MPLBACKEND", "Agg")     # before matplotlib loads

import warnings                                 # noqa: E402
from types import SimpleNamespace               # noqa: E402

import matplotlib as mpl                        # noqa: E402
import matplotlib.pyplot as plt                 # noqa: E402
import numpy as np                              # noqa: E402
import pytest                                   # noqa: E402
from matplotlib.figure import Figure            # noqa: E402

from nnlib import plots                         # noqa: E402


@pytest.fixture(autouse=True)
def strict_and_tidy():
    """Warnings are errors; afterwards no figure may be left in pyplot."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    left_open = plt.get_fignums()
    plt.close("all")
    assert left_open == [], "a figure was left registered with pyplot"


def drawn(fig):
    """Render ``fig``: layout and text problems only show when drawing."""
    assert isinstance(fig, Figure)
    png = plots.to_png(fig, dpi=30)
    assert png.startswith(b"\x89PNG")
    return fig


def image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def digits(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)


# ---------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 28, 28), (5, 1, 28, 28), (5, 784)])
def test_as_images_accepts_the_usual_shapes(shape):
    x = np.arange(np.prod(shape)).reshape(shape)
    out = plots.as_images(x)
    assert out.shape == (5, 28, 28)
    np.testing.assert_array_equal(out.ravel(), x.ravel())


@pytest.mark.parametrize("shape", [(28, 28), (5, 3, 28, 28), (5, 780)])
def test_as_images_names_the_bad_shape(shape):
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)|not square"):
        plots.as_images(np.zeros(shape))


def test_digit_grid_one_panel_per_image_with_its_label():
    y = np.array([3, 1, 4, 1, 5, 9, 2])
    fig = drawn(plots.digit_grid(digits(7), y, ncols=4))
    axes = image_axes(fig)
    assert len(fig.axes) == len(axes) == 7          # the 8th cell is removed
    assert [ax.get_xlabel() for ax in axes] == [str(t) for t in y]


def test_digit_grid_frames_the_wrong_predictions():
    y = np.array([3, 1, 4, 1, 5])
    pred = np.array([3, 7, 4, 1, 6])
    fig = drawn(plots.digit_grid(digits(5).reshape(5, -1), y, pred))
    axes = image_axes(fig)
    captions = [ax.get_xlabel() for ax in axes]
    assert captions == ["3", "pred 7\ntrue 1", "4", "1", "pred 6\ntrue 5"]
    framed = [ax.spines["top"].get_visible() for ax in axes]
    assert framed == [False, True, False, False, True]
    assert fig.get_suptitle().startswith("2 of 5")


def test_digit_grid_needs_labels_for_predictions():
    with pytest.raises(ValueError, match="labels"):
        plots.digit_grid(digits(3), predictions=[1, 2, 3])
    with pytest.raises(ValueError, match="3 images"):
        plots.digit_grid(digits(3), labels=[1, 2])


def test_class_distribution_counts_on_the_bars():
    y_train = np.array([0, 0, 1, 2, 2, 2, 9])
    fig = drawn(plots.class_distribution(y_train, np.array([1, 1, 5])))
    assert len(fig.axes) == 2
    bars = fig.axes[0].containers[0]
    assert [b.get_height() for b in bars] == list(np.bincount(y_train,
                                                              minlength=10))
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels[:4] == ["2", "1", "3", "0"]


def test_mean_images_shows_each_class_average():
    X = digits(9).astype(np.float32)
    y = np.array([0, 1, 2] * 3)
    fig = drawn(plots.mean_images(X, y))
    axes = image_axes(fig)
    assert len(axes) == 3
    for c, ax in enumerate(axes):
        np.testing.assert_allclose(ax.images[0].get_array(),
                                   X[y == c].mean(axis=0), rtol=1e-6)


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------
def test_plot_confusion_matrix_writes_every_count():
    cm = np.array([[50, 2, 0], [1, 40, 7], [0, 0, 30]])
    fig = drawn(plots.plot_confusion_matrix(cm))
    assert len(fig.axes) == 2                   # the matrix, its colour bar
    ax = fig.axes[0]
    assert sorted(int(t.get_text()) for t in ax.texts) == sorted(cm.ravel())
    assert "92.31% correct, 10 errors" in ax.get_title()
    with pytest.raises(ValueError, match="square"):
        plots.plot_confusion_matrix(np.ones((2, 3)))


def test_most_confident_mistakes_are_sorted_by_confidence():
    images = np.arange(6)[:, None, None] * np.ones((6, 28, 28))
    y = np.array([0, 1, 2, 0, 1, 2])
    probs = np.full((6, 3), 0.05)
    wrong = {1: (0, 0.7), 2: (0, 0.9), 4: (2, 0.6)}   # image: (pred, p)
    for i in range(6):
        pred, p = wrong.get(i, (y[i], 0.9))
        probs[i] = (1 - p) / 2
        probs[i, pred] = p
    fig = drawn(plots.most_confident_mistakes(images, y, probs, k=12))
    axes = image_axes(fig)
    shown = [int(ax.images[0].get_array()[0, 0]) for ax in axes]
    assert shown == [2, 1, 4]
    assert axes[0].get_xlabel() == "pred 0 (90.0%)\ntrue 2"


def test_most_confident_mistakes_keeps_k_and_checks_probs():
    y = np.zeros(5, int)
    probs = np.tile([0.1, 0.9], (5, 1))
    fig = drawn(plots.most_confident_mistakes(digits(5), y, probs, k=2))
    assert len(image_axes(fig)) == 2
    with pytest.raises(ValueError, match="softmax"):
        plots.most_confident_mistakes(digits(5), y, np.ones((5, 2)))
    perfect = drawn(plots.most_confident_mistakes(digits(5), y,
                                                  probs[:, ::-1]))
    assert perfect.axes[0].texts[0].get_text() == "no mistakes"


# ---------------------------------------------------------------------------
# Convolutions
# ---------------------------------------------------------------------------
def test_conv_filters_one_input_channel():
    w = np.random.default_rng(0).standard_normal((6, 1, 3, 3))
    fig = drawn(plots.conv_filters(w))
    panels = image_axes(fig)
    assert len(panels) == 6 and len(fig.axes) == 7      # and a colour bar
    norm = panels[0].images[0].norm
    assert norm.vmin == -norm.vmax == -np.abs(w).max()  # white is zero


def test_conv_filters_grid_of_out_by_in_or_mean():
    rng = np.random.default_rng(0)
    w = SimpleNamespace(data=rng.standard_normal((4, 3, 3, 3)))  # Parameter
    assert len(image_axes(drawn(plots.conv_filters(w)))) == 12
    big = rng.standard_normal((8, 4, 3, 3))
    fig = drawn(plots.conv_filters(big, max_panels=16))
    panels = image_axes(fig)
    assert len(panels) == 8
    assert "mean over 4 input channels" in fig.get_suptitle()
    np.testing.assert_allclose(panels[0].images[0].get_array(),
                               big[0].mean(axis=0))
    with pytest.raises(ValueError, match="out, in, kH, kW"):
        plots.conv_filters(np.zeros((4, 3, 3)))


def small_cnn():
    from nnlib import layers as L
    rng = np.random.default_rng(0)
    return L.Sequential(L.Conv2d(1, 3, 3, rng=rng), L.ReLU(),
                        L.MaxPool2d(2), L.Flatten(),
                        L.Linear(3 * 5 * 5, 10, rng=rng), L.ReLU())


def test_feature_maps_stages_and_values():
    model = small_cnn()
    x = np.random.default_rng(1).random((1, 1, 12, 12)).astype(np.float32)
    fig = drawn(plots.feature_maps(model, x))
    # input, after ReLU, after MaxPool; the last ReLU is not an image
    assert len(image_axes(fig)) == 1 + 3 + 3
    relu_out = model[1].forward(model[0].forward(x))
    panels = image_axes(fig)
    np.testing.assert_allclose(panels[1].images[0].get_array(),
                               relu_out[0, 0], rtol=1e-6)
    assert len(plots.feature_maps(model, x[0, 0], max_channels=2).axes) == 5


@pytest.mark.parametrize("mode", [True, False])
def test_feature_maps_restores_the_mode(mode):
    model = small_cnn().train(mode)
    plots.feature_maps(model, np.zeros((1, 1, 12, 12), np.float32))
    assert all(layer.training == mode for layer in model)


def test_feature_maps_errors():
    model = small_cnn()
    with pytest.raises(ValueError, match="one image"):
        plots.feature_maps(model, np.zeros((2, 1, 12, 12), np.float32))
    with pytest.raises(ValueError, match="not images"):
        plots.feature_maps(model, np.zeros((1, 1, 12, 12), np.float32),
                           layers=[3])
    with pytest.raises(TypeError, match="Sequential"):
        plots.feature_maps(object(), np.zeros((1, 1, 12, 12)))


# ---------------------------------------------------------------------------
# Initialisation
# ---------------------------------------------------------------------------
def test_activation_histograms_write_each_std():
    rng = np.random.default_rng(0)
    layers = {f"layer {i}": rng.normal(0, i, (50, 8)) for i in (1, 2, 3)}
    layers["layer 3"][0, 0] = np.inf
    fig = drawn(plots.activation_histograms(layers, title="t"))
    assert len(fig.axes) == 3
    a2 = layers["layer 2"]
    assert fig.axes[1].get_title() == f"layer 2: std {a2.std():.3g}"
    assert "1 inf/nan left out" in fig.axes[2].get_title()
    as_list = drawn(plots.activation_histograms(list(layers.values()),
                                                xlim=(-3, 3)))
    assert as_list.axes[0].get_title().startswith("layer 1: std")


def test_layer_stats_one_log_line_per_scheme():
    stats = {"N(0,1)": [1, 10, 100], "He": [1, 1, 1], "dead": [1, 0, np.inf]}
    fig = drawn(plots.layer_stats(stats))
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == list(stats)
    np.testing.assert_array_equal(lines[2].get_ydata(), [1, np.nan, np.nan])


def test_plot_dead_relu_fraction_single_and_grouped():
    single = {"layer 1": 0.0, "layer 2": 0.25, "layer 3": 0.5}
    ax = drawn(plots.plot_dead_relu_fraction(single)).axes[0]
    assert [b.get_height() for b in ax.containers[0]] == [0, 25, 50]
    grouped = {"N(0,1)": single, "He": [0.0, 0.1, 0.2]}
    fig = drawn(plots.plot_dead_relu_fraction(grouped))
    assert len(fig.axes[0].containers) == 2
    assert [t.get_text() for t in fig.axes[0].get_legend().texts] == \
        ["N(0,1)", "He"]


# ---------------------------------------------------------------------------
# Training: learning rates
# ---------------------------------------------------------------------------
def test_lr_sweep_circles_the_best_and_marks_divergence():
    results = {"SGD": {0.01: 0.9, 0.1: 0.975, 1.0: float("nan")},
               "Adam": {0.001: 0.98, 0.01: 0.97}}
    ax = drawn(plots.lr_sweep(results)).axes[0]
    assert ax.get_xscale() == "log"
    notes = [t.get_text() for t in ax.texts]
    assert notes == ["0.1: 97.5%", "0.001: 98.0%"]
    legend = [t.get_text() for t in ax.get_legend().texts]
    assert legend == ["SGD", "Adam", "diverged (NaN)"]
    with pytest.raises(ValueError, match="fractions"):
        plots.lr_sweep({"SGD": {0.1: 97.5}})


def test_lr_schedules_one_flat_step_per_epoch():
    schedules = {"constant": [0.1] * 4, "step": [0.1, 0.1, 0.05, 0.05]}
    ax = drawn(plots.lr_schedules(schedules, num_epochs=4)).axes[0]
    step = ax.get_lines()[1]
    np.testing.assert_array_equal(step.get_xdata(), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(step.get_ydata()[:4], schedules["step"])
    with pytest.raises(ValueError, match="num_epochs=5"):
        plots.lr_schedules(schedules, num_epochs=5)


# ---------------------------------------------------------------------------
# im2col, and the style
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kernel_size", [2, 3])
def test_im2col_picture_shows_what_the_library_computes(kernel_size):
    from nnlib.kernels import im2col
    fig = drawn(plots.im2col_picture(kernel_size=kernel_size))
    ax = fig.axes[0]
    pixels = np.arange(1, 17, dtype=float).reshape(1, 1, 4, 4)
    cols = im2col(pixels, kernel_size)
    # the matrix is the only block of cells with k*k numbers per row
    rows = {}
    for t in ax.texts:
        if t.get_text().isdigit() and t.get_position()[0] > 5:
            rows.setdefault(t.get_position()[1], []).append(
                (t.get_position()[0], int(t.get_text())))
    shown = [[v for _, v in sorted(rows[y])] for y in sorted(rows)]
    np.testing.assert_array_equal(shown, cols)


def test_im2col_picture_rejects_a_big_example():
    with pytest.raises(ValueError, match="tiny"):
        plots.im2col_picture(input_size=8)


def test_style_does_not_leak():
    before = mpl.rcParams["axes.spines.top"], mpl.rcParams["font.size"]
    plots.layer_stats({"a": [1, 2]})
    assert (mpl.rcParams["axes.spines.top"],
            mpl.rcParams["font.size"]) == before


@pytest.mark.parametrize("first", ["", "%matplotlib inline\n"])
def test_in_a_kernel_figures_are_drawn_at_twice_the_pixels(first,
                                                         monkeypatch):
    """What the book stores: a figure's PNG has twice the pixels of the width
    it is shown at, given in the output's metadata, whether or not pyplot's
    inline backend was set up first."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    code = first + """\
import numpy as np
from nnlib import plots
plots.digit_grid(np.zeros((4, 28, 28)), labels=[0, 1, 2, 3], ncols=4)"""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    monkeypatch.delenv("MPLBACKEND")    # the kernel's own backend, inline
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    [output] = [o for o in nb.cells[0].outputs if "image/png" in o.get(
        "data", {})]
    png = __import__("base64").b64decode(output.data["image/png"])
    size = output.metadata["image/png"]
    assert int.from_bytes(png[16:20], "big") // 2 == size["width"] > 100
    # no height: a fixed one would squash the figure in a narrow column
    assert set(size) == {"width"}
    assert output.data["text/plain"].startswith("<Figure size ")
    assert png[25] == 3         # a palette PNG: 256 colours at most


def test_a_light_png_keeps_the_picture():
    fig = drawn(plots.plot_confusion_matrix(np.array([[50, 2], [3, 40]])))
    png, size = plots.sharp_png(fig)
    assert plots.png_size(png)[0] // 2 == size["width"]
    full = np.asarray(__import__("PIL.Image").Image.open(io.BytesIO(
        plots.to_png(fig, dpi=2 * fig.dpi))).convert("RGB"), dtype=float)
    light = np.asarray(__import__("PIL.Image").Image.open(
        io.BytesIO(png)).convert("RGB"), dtype=float)
    if full.shape == light.shape:       # same crop: compare the pixels
        assert np.abs(full - light).mean() < 3
    assert plots.sharp_png(plots.figure((2, 2))) is None


def test_outside_a_kernel_nothing_is_configured():
    assert plots.show_sharp() is False
