"""The exploration widgets, without a browser: each builds, shows something
in its first state (all the static book will ever show), and redraws when
a control's value changes."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")     # before matplotlib loads

import re                                       # noqa: E402
import warnings                                 # noqa: E402

import matplotlib.pyplot as plt                 # noqa: E402
import numpy as np                              # noqa: E402
import pytest                                   # noqa: E402

pytest.importorskip("ipywidgets")
from nnlib import explore                       # noqa: E402

PNG = b"\x89PNG"


@pytest.fixture(autouse=True)
def strict_and_tidy():
    """Warnings are errors; afterwards no figure may be left in pyplot."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    left_open = plt.get_fignums()
    plt.close("all")
    assert left_open == [], "a figure was left registered with pyplot"


def digits():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (12, 28, 28)).astype(np.uint8)
    return X, np.arange(12) % 3          # classes 0, 1, 2; four images each


def png(image_widget):
    return bytes(image_widget.value)     # the widget holds a memoryview


def table_values(html):
    return [int(v) for v in re.findall(r">(\d+)</td>", html)]


# ---------------------------------------------------------------------------
def test_browse_digits_first_state_reads_well():
    X, y = digits()
    b = explore.browse_digits(X, y)
    assert b.digit.value == 0 and b.index.max == 3
    assert "digit 0" in b.caption.value
    assert png(b.image).startswith(PNG)
    assert table_values(b.table.value) == X[0].ravel().tolist()


def test_browse_digits_follows_the_controls():
    X, y = digits()
    b = explore.browse_digits(X, y)
    first = png(b.image)
    b.index.value = 2                    # the third 0: image 6 of X
    assert png(b.image) != first
    assert table_values(b.table.value) == X[6].ravel().tolist()
    b.digit.value = 2                    # back to the first example of a 2
    assert b.index.value == 0 and "digit 2" in b.caption.value
    assert table_values(b.table.value) == X[2].ravel().tolist()


def test_browse_digits_errors():
    X, y = digits()
    with pytest.raises(ValueError, match="one label per image"):
        explore.browse_digits(X, y[:5])
    with pytest.raises(ValueError, match="digit 7"):
        explore.browse_digits(X, y, digit=7)


# ---------------------------------------------------------------------------
def explorer(**kwargs):
    X = np.random.default_rng(1).random((40, 64))
    return explore.init_scale_explorer(X, rng=np.random.default_rng(0),
                                       depth=4, width=32, **kwargs)


def test_init_scale_explorer_redraws_with_the_gain():
    e = explorer()
    first, stds = png(e.image), e.stds
    assert first.startswith(PNG) and len(stds) == 4
    e.gain.value = 2.0
    assert png(e.image) != first
    # ReLU is positively homogeneous: doubling every weight matrix doubles
    # each layer's output once more, so layer k's std grows by 2**k
    np.testing.assert_allclose(e.stds, np.array(stds) * 2.0 ** np.arange(
        1, 5), rtol=1e-10)


def test_init_scale_explorer_tanh_saturates_with_a_large_gain():
    e = explorer(activation="tanh")
    before = png(e.image)
    e.gain.value = 10.0
    assert png(e.image) != before
    assert e.stds[-1] > 0.9              # most units pinned at -1 or +1
    saturated = np.mean(np.abs(e.forward(10.0, "tanh")[-1]) > 0.99)
    assert f"{saturated:.0%} of its values saturated" in e.readout.value
    e.activation.value = "relu"
    assert "never fire" in e.readout.value


def test_init_scale_explorer_needs_a_generator():
    with pytest.raises(TypeError, match="default_rng"):
        explore.init_scale_explorer(np.zeros((4, 4)), rng=0)


# ---------------------------------------------------------------------------
# Precomputed explorers: every combination rendered, controls linked in JS
# ---------------------------------------------------------------------------
def test_precomputed_renders_every_combination_and_links_each_control():
    import ipywidgets as widgets

    a = widgets.ToggleButtons(options=["x", "y"])
    b = widgets.SelectionSlider(options=[("one", 1), ("two", 2), ("3", 3)])
    seen = []

    def render(u, v):
        seen.append((u, v))
        return widgets.HTML(f"{u}{v}")

    p = explore.Precomputed([a, b], render)
    assert seen == [(u, v) for u in "xy" for v in (1, 2, 3)]
    # One link from a to the outer stack, one from b to each inner stack.
    assert len(p.links) == 1 + 2
    assert {(link.source[0], link.source[1]) for link in p.links} == {
        (a, "index"), (b, "index")}
    assert p.shown().value == "x1"
    a.index, b.index = 1, 2
    # The links act in the browser; here we follow the indices ourselves.
    assert p.shown().value == "y3"
    assert "nnlib-explorer" in p._dom_classes


def test_precomputed_refuses_a_control_without_options():
    import ipywidgets as widgets

    with pytest.raises(TypeError, match="not a selection widget"):
        explore.Precomputed([widgets.IntSlider()], lambda v: None)


def test_digit_gallery_shows_the_chosen_example_and_its_pixels():
    X, y = digits()
    g = explore.digit_gallery(X, y, examples=3)
    g.digit.index, g.example.index = 1, 2        # the third 1: X[7]
    caption, row = g.shown().children
    assert "digit 1</b>: example 3 of 4, X[7]" in caption.value
    picture, table = row.children
    assert png(picture).startswith(PNG)
    assert table_values(table.value) == X[7].ravel().tolist()


def test_init_scale_gallery_matches_the_live_explorer():
    X, _ = digits()
    g = explore.init_scale_gallery(X, rng=np.random.default_rng(1), depth=4,
                                   width=16, gain=0.5, gains=(0.5, 2.0))
    live = explore.init_scale_explorer(X, rng=np.random.default_rng(1),
                                       depth=4, width=16, gain=2.0,
                                       activation="tanh")
    g.gain.index, g.activation.index = 1, 1
    readout, picture = g.shown().children
    assert readout.value == live.readout.value
    assert png(picture).startswith(PNG)
