"""Widgets for exploring the data and the ideas of the chapters (ipywidgets).

- ``browse_digits(X, y)``: pick a digit and an example, see its pixels.
- ``init_scale_explorer(X, rng=...)``: how the initial weight scale and the
  activation decide whether a deep network's signal explodes or dies.

Each returns a widget (a ``VBox`` whose controls are attributes, such as
``.digit`` or ``.gain``); leave it on the last line of a cell to show it.

In a running notebook the controls redraw the picture through Python
callbacks, which the static book cannot run. So each explorer whose
pictures can be computed in advance also comes precomputed:

- ``digit_gallery(X, y, examples=4)`` and ``init_scale_gallery(X, rng=...)``
  render every combination of their controls' values when the notebook
  runs, and link the controls to the pictures in the browser
  (``Precomputed``). They work on the book's pages, with no kernel.

Pictures are PNG bytes in ``widgets.Image``, drawn with Matplotlib's Agg
renderer: no ipympl, no JavaScript of our own.
"""
from __future__ import annotations

import io

import ipywidgets as widgets
import numpy as np
from matplotlib.image import imsave

from . import plots

__all__ = ["browse_digits", "init_scale_explorer",
           "digit_gallery", "init_scale_gallery", "Precomputed",
           "DigitBrowser", "InitScaleExplorer"]


# ---------------------------------------------------------------------------
# Controls over outputs computed in advance: they work without a kernel
# ---------------------------------------------------------------------------
class Precomputed(widgets.VBox):
    """Controls that switch between outputs rendered in advance.

    ``controls`` is a list of selection widgets (``ToggleButtons``,
    ``SelectionSlider``, ``Dropdown``, ...); ``render(*values)`` returns the
    widget to show for one value of each. Every combination is rendered
    now, into nested ``Stack``s, one level per control, and each control's
    ``index`` is linked to its level's ``selected_index`` in the browser
    (``jslink``). Moving a control then needs no Python: it works in the
    static book as in a running notebook. The cost is the size of the
    page: one picture per combination, so keep the grids small.
    """

    def __init__(self, controls, render):
        super().__init__()
        if not controls:
            raise ValueError("Precomputed needs at least one control")
        for control in controls:
            if not hasattr(control, "options") or not control.options:
                raise TypeError(
                    f"{type(control).__name__} is not a selection widget "
                    "with options: use ToggleButtons, SelectionSlider or "
                    "Dropdown, whose options are the values to render")
        self.controls = list(controls)
        self.links = []
        self.stack = self._build(render, [])
        self.children = [*self.controls, self.stack]
        self.add_class("nnlib-explorer")   # the page test finds them by it

    def _build(self, render, chosen):
        level = len(chosen)
        if level == len(self.controls):
            return render(*chosen)
        control = self.controls[level]
        values = _option_values(control)
        stack = widgets.Stack(
            [self._build(render, chosen + [v]) for v in values],
            selected_index=control.index)
        self.links.append(widgets.jslink((control, "index"),
                                         (stack, "selected_index")))
        return stack

    def __repr__(self):
        names = " x ".join(c.description or type(c).__name__
                           for c in self.controls)
        count = int(np.prod([len(c.options) for c in self.controls]))
        return f"Precomputed({names}: {count} outputs rendered in advance)"

    def shown(self):
        """The widget shown for the controls' current values."""
        node = self.stack
        for control in self.controls:
            node = node.children[control.index]
        return node


def _option_values(control):
    """The values of a selection widget's options, in order."""
    return [option[1] if isinstance(option, tuple) and len(option) == 2
            else option for option in control.options]


# ---------------------------------------------------------------------------
# Browse the digits
# ---------------------------------------------------------------------------
def _png_of_array(a, vmin, vmax, scale=6):
    """A grey image as PNG bytes, each pixel a crisp ``scale`` x ``scale``
    block (a browser would blur a small image it enlarges)."""
    big = np.kron(a, np.ones((scale, scale)))
    buf = io.BytesIO()
    imsave(buf, big, cmap="gray_r", vmin=vmin, vmax=vmax, format="png")
    return buf.getvalue()


def _pixel_table(a, vmin, vmax):
    """An HTML table of the pixel values, each cell shaded like its pixel."""
    if np.issubdtype(a.dtype, np.integer):
        texts = a.astype(str)
    else:
        texts = np.char.mod("%.1f", a)
    width = 5 * max(len(t) for t in texts.ravel()) + 4   # px, for 8px digits
    ink = (a - vmin) / (vmax - vmin)                     # 0 paper, 1 ink
    grey = np.round(255 * (1 - ink)).astype(int)

    def cell(r, c):
        if ink[r, c] == 0:       # paper: most cells, styled by the CSS
            return f"<td>{texts[r, c]}</td>"
        color = "white" if ink[r, c] > 0.4 else "black"
        g = grey[r, c]
        return (f'<td style="background:rgb({g},{g},{g});color:{color}">'
                f"{texts[r, c]}</td>")

    rows = "".join("<tr>" + "".join(cell(r, c) for c in range(a.shape[1]))
                   + "</tr>" for r in range(a.shape[0]))
    css = (f"<style>.nnlib-px{width}{{border-collapse:collapse;"
           "font:8px/1 monospace;text-align:center}"
           f".nnlib-px{width} td{{width:{width}px;min-width:{width}px;"
           "height:12px;padding:0;border:0;background:#fff;"
           "color:#c8c8c8}</style>")
    return f'{css}<table class="nnlib-px{width}">{rows}</table>'


class DigitBrowser(widgets.VBox):
    """Pick a digit (``.digit``) and an example of it (``.index``); see the
    image (``.image``) and its pixel values (``.table``)."""

    def __init__(self, X, y, digit=None, index=0):
        super().__init__()
        self.images = plots.as_images(X)
        self.labels = np.asarray(y)
        if self.labels.shape != (len(self.images),):
            raise ValueError(f"y must hold one label per image: got shape "
                             f"{self.labels.shape} for {len(self.images)} "
                             "images")
        self.vmin, self.vmax = (float(v) for v in
                                plots._intensity_range(self.images))
        classes = [int(c) for c in np.unique(self.labels)]
        digit = classes[0] if digit is None else digit
        if digit not in classes:
            raise ValueError(f"digit {digit} is not among the labels "
                             f"{classes}")
        self.digit = widgets.ToggleButtons(
            options=classes, value=digit, description="digit",
            style={"button_width": "32px"})
        self.index = widgets.IntSlider(
            value=index, min=0, max=self._count(digit) - 1,
            description="example", continuous_update=False)
        self.caption = widgets.HTML()
        self.image = widgets.Image(format="png",
                                   layout={"margin": "0 16px 0 0"})
        self.table = widgets.HTML()
        self.digit.observe(self._on_digit, names="value")
        self.index.observe(self._redraw, names="value")
        self.children = [self.digit, self.index, self.caption,
                         widgets.HBox([self.image, self.table],
                                      layout={"align_items": "flex-start",
                                              "flex_flow": "row wrap"})]
        self._redraw()

    def __repr__(self):
        return (f"DigitBrowser(digit {self.digit.value}, example "
                f"{self.index.value + 1} of {self._count(self.digit.value)})")

    def _count(self, digit):
        return int(np.sum(self.labels == digit))

    def _on_digit(self, change):
        self.index.value = 0
        self.index.max = self._count(change["new"]) - 1
        self._redraw()

    def _redraw(self, change=None):
        d, i = self.digit.value, self.index.value
        where = int(np.flatnonzero(self.labels == d)[i])
        a = self.images[where]
        self.caption.value = (f"<b>digit {d}</b>: example {i + 1:,} of "
                              f"{self._count(d):,}, X[{where}]")
        self.image.value = _png_of_array(a, self.vmin, self.vmax)
        self.table.value = _pixel_table(a, self.vmin, self.vmax)


def browse_digits(X, y, digit=None, index=0):
    """A widget to look at any digit of ``X`` and the numbers it is made of
    (needs a running notebook; see ``digit_gallery`` for the book)."""
    return DigitBrowser(X, y, digit, index)


def digit_gallery(X, y, examples=4):
    """The first ``examples`` images of each digit with their pixel values,
    rendered in advance: pick a digit and an example, in the book too."""
    images = plots.as_images(X)
    labels = np.asarray(y)
    if labels.shape != (len(images),):
        raise ValueError(f"y must hold one label per image: got shape "
                         f"{labels.shape} for {len(images)} images")
    vmin, vmax = (float(v) for v in plots._intensity_range(images))
    classes = [int(c) for c in np.unique(labels)]
    counts = {d: int(np.sum(labels == d)) for d in classes}
    examples = min([examples] + list(counts.values()))
    digit = widgets.ToggleButtons(options=classes, description="digit",
                                  style={"button_width": "32px"})
    example = widgets.SelectionSlider(
        options=list(range(1, examples + 1)), description="example")

    def render(d, i):
        where = int(np.flatnonzero(labels == d)[i - 1])
        a = images[where]
        caption = widgets.HTML(f"<b>digit {d}</b>: example {i} of "
                               f"{counts[d]:,}, X[{where}]")
        picture = widgets.Image(value=_png_of_array(a, vmin, vmax),
                                format="png",
                                layout={"margin": "0 16px 0 0"})
        table = widgets.HTML(_pixel_table(a, vmin, vmax))
        return widgets.VBox([caption, widgets.HBox(
            [picture, table], layout={"align_items": "flex-start",
                                      "flex_flow": "row wrap"})])

    gallery = Precomputed([digit, example], render)
    gallery.digit, gallery.example = digit, example
    return gallery


# ---------------------------------------------------------------------------
# Initialisation scale in a deep MLP
# ---------------------------------------------------------------------------
_ACTIVATIONS = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh}
_REFERENCE_GAINS = {"gain 1 (LeCun, ~Xavier)": 1.0,
                    "gain √2 (He)": np.sqrt(2.0)}


class InitScaleExplorer(widgets.VBox):
    """A ``depth``-layer MLP whose weights are N(0, gain² / fan_in).

    Move ``.gain`` or change ``.activation`` and see the spread of the
    activations layer by layer (``.image``, and ``.stds``).
    """

    def __init__(self, X, *, rng, depth=10, width=256, gain=1.0,
                 activation="relu", max_inputs=500):
        super().__init__()
        if not isinstance(rng, np.random.Generator):
            raise TypeError("pass rng=np.random.default_rng(seed)")
        x = np.asarray(X, dtype=np.float64)[:max_inputs]
        x = x.reshape(len(x), -1)
        # standardised inputs: std 1 goes in, so any other std is the net's
        self.x = (x - x.mean()) / (x.std() or 1.0)
        self.width = width
        fan_ins = [self.x.shape[1]] + [width] * (depth - 1)
        # gain-1 weights, drawn once: a gain only rescales them
        self.unit_weights = [rng.standard_normal((f, width)) / np.sqrt(f)
                             for f in fan_ins]
        self.gain = widgets.FloatLogSlider(
            value=gain, base=10, min=-1, max=1, step=0.01,
            description="gain", readout_format=".2f",
            continuous_update=False)
        self.activation = widgets.Dropdown(
            options=list(_ACTIVATIONS), value=activation,
            description="activation")
        self.readout = widgets.HTML()
        self.image = widgets.Image(format="png")
        self.gain.observe(self._redraw, names="value")
        self.activation.observe(self._redraw, names="value")
        self.children = [widgets.HBox([self.gain, self.activation]),
                         self.readout, self.image]
        self._redraw()

    def __repr__(self):
        return (f"InitScaleExplorer(gain {self.gain.value:.2f}, "
                f"{self.activation.value}, {len(self.stds)} layers: std "
                f"{self.stds[0]:.3g} -> {self.stds[-1]:.3g})")

    def forward(self, gain, activation):
        """The activations of every layer for weights scaled by ``gain``."""
        act = _ACTIVATIONS[activation]
        h, out = self.x, []
        for w in self.unit_weights:
            h = act(h @ (gain * w))
            out.append(h)
        return out

    def _figure(self, acts, gain, activation):
        """Left: std per layer, beside the He and LeCun gains. Right:
        histograms of the first, middle and last layer."""
        depth = len(acts)
        layers = np.arange(1, depth + 1)
        picked = sorted({0, max(0, depth // 2 - 1), depth - 1})
        with plots.style():
            fig = plots.figure((8.6, 3.6))
            axes = fig.subplot_mosaic(
                [["std", str(k)] for k in picked],
                width_ratios=[1.3, 1])
            ax = axes["std"]
            for (name, g), ls in zip(_REFERENCE_GAINS.items(), ("--", ":")):
                ref = [a.std() for a in self.forward(g, activation)]
                ax.plot(layers, ref, color="#777777", ls=ls, lw=1.3,
                        label=name, zorder=3)    # visible where they agree
            stds = np.array([a.std() for a in acts])
            ax.plot(layers, np.where(stds > 0, stds, np.nan), marker="o",
                    ms=5, color=plots.PALETTE[0], label=f"gain {gain:.2f}")
            plots.log_y(ax)
            ax.set_xticks(layers)
            ax.set_xlabel("layer")
            ax.set_ylabel("std of activations")
            ax.set_title(f"Spread layer by layer ({activation})")
            ax.legend(fontsize=8)
            for k in picked:
                self._histogram(axes[str(k)], acts[k], k, activation)
            axes[str(picked[-1])].set_xlabel("activation value")
        return fig

    @staticmethod
    def _histogram(ax, a, k, activation):
        title = f"layer {k + 1}: std {a.std():.3g}"
        if activation == "relu":
            # the zeros would be one tall bar: count them, plot the rest
            title += f", {np.mean(a == 0):.0%} zeros"
            a = a[a > 0]
        else:
            title += f", {np.mean(np.abs(a) > 0.99):.0%} saturated"
        counts, edges = np.histogram(
            a, bins=50, range=(-1, 1) if activation == "tanh" else None)
        ax.stairs(counts, edges, fill=True, color=plots.PALETTE[0])
        ax.set_title(title, fontsize=9, pad=2)
        ax.set_yticks([])
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(False)

    def _redraw(self, change=None):
        self.readout.value, self.image.value = self.render(
            self.gain.value, self.activation.value)

    def render(self, gain, activation):
        """The readout (HTML) and the figure (PNG bytes) for one setting;
        sets ``.stds``."""
        acts = self.forward(gain, activation)
        self.stds = [float(a.std()) for a in acts]
        last = acts[-1]
        if activation == "relu":
            health = (f"{np.mean(np.all(last <= 0, axis=0)):.0%} of its "
                      "units never fire")
        else:
            health = (f"{np.mean(np.abs(last) > 0.99):.0%} of its values "
                      "saturated (|h| > 0.99)")
        weight_std = gain / np.sqrt(self.width)
        readout = (
            f"Weights ~ N(0, gain²/fan_in), std {weight_std:.3g} for "
            f"fan_in {self.width}. Input std 1 → layer 1 std "
            f"{self.stds[0]:.3g} → layer {len(acts)} std "
            f"{self.stds[-1]:.3g}; {health}.")
        return readout, plots.to_png(self._figure(acts, gain, activation))


def init_scale_explorer(X, *, rng, depth=10, width=256, gain=1.0,
                        activation="relu"):
    """A widget: the initial weight scale against the depth of a network.

    ``X``: a batch of inputs (images or rows); ``rng``: the generator for
    the weights, e.g. ``np.random.default_rng(0)``.
    """
    return InitScaleExplorer(X, rng=rng, depth=depth, width=width,
                             gain=gain, activation=activation)


GALLERY_GAINS = (0.5, 0.71, 1.0, 1.41, 2.0)


def init_scale_gallery(X, *, rng, depth=10, width=256, gain=1.0,
                       gains=GALLERY_GAINS, activations=("relu", "tanh")):
    """``init_scale_explorer`` rendered in advance for a grid of gains and
    activations, so that its controls work in the book too. It opens at
    ``gain`` (one of ``gains``); ``.forward(gain, activation)`` runs the
    same network at any gain."""
    if gain not in gains:
        raise ValueError(f"gain {gain} is not one of the gains {gains}")
    explorer = InitScaleExplorer(X, rng=rng, depth=depth, width=width,
                                 gain=gain, activation=activations[0])
    gain = widgets.SelectionSlider(
        options=[(f"{g:.2f}", g) for g in gains], value=gain,
        description="gain")
    activation = widgets.ToggleButtons(options=list(activations),
                                       description="activation")

    def render(g, a):
        readout, png = explorer.render(g, a)
        return widgets.VBox([widgets.HTML(readout),
                             widgets.Image(value=png, format="png")])

    gallery = Precomputed([gain, activation], render)
    explorer.close()       # its own controls were only the renderer's
    gallery.gain, gallery.activation = gain, activation
    gallery.forward = explorer.forward
    return gallery
