"""Figures for the chapters: arrays and results in, figures out.

How a figure gets shown (one rule for the whole book)
-----------------------------------------------------
Every function here *returns* a ``matplotlib.figure.Figure`` and shows
nothing itself. The figure is made with pyplot (which, in Jupyter, sets up
how figures display) and at once detached from it with ``plt.close(fig)``,
so Jupyter does not also show it by itself at the end of the cell. It
appears exactly once: where the notebook displays it, as the last line of
a cell or with ``display(fig)``. In a script, save it instead:
``fig.savefig("digits.png")``. (Without the ``close``, a pyplot figure on
a cell's last line would show up twice.)

Style: one small set of rc settings, applied only while a function draws
(``style()``; nothing global changes), and the Okabe-Ito colours, which
stay distinct for readers with any common colour-vision deficiency.
Figures are at most about 9 inches wide, the width of a book page.

Sharpness: in a Jupyter kernel, importing this module sets how the kernel
shows the figures made here (``show_sharp()``): drawn at twice their
pixels and shown at their size (the PNG's display width goes in the
output's metadata, which the built book reads), so they stay sharp on a
high-density screen and when zoomed, and stored with at most 256 colours
(``light_png``), which keeps them about as small as a plain PNG. Only the
width is given: a height too would fix it, and a figure scaled down to a
narrow column would be squashed.

The numbers a figure shows are computed elsewhere and passed in: the
confusion matrix and the dead units by ``nnlib.metrics``, which needs no
Matplotlib.
"""
from __future__ import annotations

import base64
import functools
import io
import math
import sys
from collections.abc import Mapping

import matplotlib as mpl
import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import SymLogNorm
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from .metrics import as_labels

__all__ = [
    "PALETTE", "style", "figure", "subplots", "log_y", "to_png",
    "as_images",
    "digit_grid", "class_distribution", "mean_images",
    "plot_confusion_matrix", "most_confident_mistakes",
    "conv_filters", "feature_maps",
    "activation_histograms", "layer_stats",
    "plot_dead_relu_fraction",
    "lr_sweep", "lr_schedules", "im2col_picture",
]

# Okabe & Ito (2008): blue, orange, bluish green, vermillion, reddish purple,
# sky blue, yellow, black.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00",
           "#CC79A7", "#56B4E9", "#F0E442", "#000000")
WRONG = PALETTE[3]          # vermillion marks a mistake
INK = "#222222"             # text and dark lines

STYLE = {
    "figure.dpi": 100,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "font.size": 11.5,
    "axes.titlesize": 12.5,
    "axes.labelsize": 11.5,
    "xtick.labelsize": 10.5,
    "ytick.labelsize": 10.5,
    "legend.fontsize": 10.5,
    "figure.titlesize": 13.5,
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#555555",
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "image.interpolation": "nearest",
}


class Figure(mpl.figure.Figure):
    """A matplotlib ``Figure`` that a Jupyter kernel shows sharp and light
    (``show_sharp``). It draws and saves like any other."""


def light_png(png):
    """The same picture with at most 256 colours, if that is smaller: a
    figure's flat colours and anti-aliased edges lose nothing visible, and
    the file shrinks two to three times."""
    from PIL import Image

    if not png.startswith(b"\x89PNG"):
        return png
    image = Image.open(io.BytesIO(png)).convert("RGB")
    buf = io.BytesIO()
    image.quantize(256, method=Image.Quantize.MEDIANCUT).save(
        buf, format="png", optimize=True)
    return min(png, buf.getvalue(), key=len)


def png_size(png):
    """Width and height of a PNG, in pixels (from its IHDR chunk)."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def sharp_png(fig):
    """What Jupyter shows for a figure: PNG bytes at twice its pixels,
    cropped to what is drawn, and the width to show them at (no height: the
    page keeps the proportions when it scales a figure down); ``None`` for
    a figure with nothing drawn."""
    if not fig.axes and not fig.lines and not fig.texts:
        return None
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=2 * fig.dpi, bbox_inches="tight")
    png = light_png(buf.getvalue())
    return png, {"width": png_size(png)[0] // 2}


def _sharp_png_base64(fig):
    shown = sharp_png(fig)
    if shown is None:
        return None
    png, size = shown
    return base64.b64encode(png).decode("ascii"), size


def show_sharp():
    """In a Jupyter kernel, show this module's figures as ``sharp_png``:
    twice their pixels, at their size, 256 colours. Outside a kernel, do
    nothing. Returns whether the kernel now shows figures that way."""
    ipython = sys.modules.get("IPython")    # a script need not import it
    shell = ipython.get_ipython() if ipython else None
    if shell is None or not hasattr(shell, "kernel"):
        return False
    # Registered for this module's Figure class, so the inline backend's
    # own set-up (which replaces the printer of matplotlib's Figure) leaves
    # it in place, whichever comes first.
    shell.display_formatter.formatters["image/png"].for_type(
        Figure, _sharp_png_base64)
    return True


def style():
    """A context manager with the book's look: ``with plots.style(): ...``."""
    return mpl.rc_context(STYLE)


def _styled(func):
    """Draw ``func``'s figure with the book's style (rc settings are read when
    an artist is created, so the figure keeps its look afterwards)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with style():
            return func(*args, **kwargs)
    return wrapper


def figure(figsize, layout="constrained"):
    """A new figure, detached from pyplot (see the rule at the top)."""
    fig = plt.figure(figsize=figsize, layout=layout, FigureClass=Figure)
    plt.close(fig)
    return fig


def subplots(nrows=1, ncols=1, *, figsize, layout="constrained", **kwargs):
    """``plt.subplots`` detached from pyplot (see the rule at the top).

    Always returns a 2-D array of axes (``squeeze=False``).
    """
    fig = figure(figsize, layout)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kwargs)


def to_png(fig, dpi=None):
    """The figure as PNG bytes, e.g. for an ``ipywidgets.Image``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def log_y(ax):
    """A log y axis with labels that read as numbers: 0.03, not 3e-02.

    Over more than four decades the powers of ten are written 10^k. Over
    less than two, the 2s, 3s and 5s between them are labelled too, and
    over less than one, every tick.
    """
    ax.set_yscale("log")

    def major(v, _):
        lo, hi = ax.get_ylim()
        if hi / lo > 1e4:
            return f"$10^{{{round(math.log10(v))}}}$"
        return f"{v:g}"

    def minor(v, _):
        lo, hi = ax.get_ylim()
        mantissa = round(v / 10 ** math.floor(math.log10(v)), 6)
        if hi / lo < 10 or (hi / lo < 100 and mantissa in (2, 3, 5)):
            return f"{v:g}"
        return ""

    ax.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(major))
    ax.yaxis.set_minor_formatter(mpl.ticker.FuncFormatter(minor))


# ---------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------
def as_images(images):
    """(N, H, W) from images given as (N, H, W), (N, 1, H, W) or (N, H*W)."""
    a = np.asarray(images)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    elif a.ndim == 2:
        side = math.isqrt(a.shape[1])
        if side * side != a.shape[1]:
            raise ValueError(
                f"images of shape {a.shape}: rows of {a.shape[1]} pixels are "
                "not square images; for a single image pass image[None]")
        a = a.reshape(len(a), side, side)
    if a.ndim != 3:
        raise ValueError(
            f"expected images of shape (N, 28, 28), (N, 1, 28, 28) or "
            f"(N, 784), got {a.shape}")
    return a


def _intensity_range(a):
    """Shared grey scale for a set of images: 0-255 for bytes, else min-max."""
    if a.dtype == np.uint8:
        return 0, 255
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    return lo, (hi if hi > lo else lo + 1)


def _frame(ax, color="#999999", lw=0.6):
    """All four spines of an image panel (the style hides top and right)."""
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color(color)
        spine.set_linewidth(lw)


def _image_grid(images, captions, *, ncols, title=None, marked=None,
                caption_colors=None, cmap="gray_r", cell=0.85):
    """One small panel per image, a caption under each, a frame on the
    ``marked`` ones; unused grid cells are removed."""
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    lines = max((c.count("\n") + 1 for c in captions), default=1)
    fig, axes = subplots(nrows, ncols, figsize=(
        ncols * cell + 0.2, nrows * (cell + 0.16 * lines) + 0.2
        + (0.35 if title else 0)))
    vmin, vmax = _intensity_range(images)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.remove()
            continue
        ax.imshow(images[i], cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        if marked is not None and marked[i]:
            _frame(ax, WRONG, 2.5)
        else:
            ax.spines[:].set_visible(False)
        color = caption_colors[i] if caption_colors is not None else INK
        ax.set_xlabel(captions[i], fontsize=10, color=color, labelpad=2,
                      linespacing=1.1)
    if title:
        fig.suptitle(title)
    return fig


@_styled
def digit_grid(images, labels=None, predictions=None, ncols=10, title=None):
    """A grid of digits, the label under each.

    With ``predictions`` (which needs ``labels``), the wrong ones get a
    vermillion frame and the caption "pred 3 / true 5".
    """
    images = as_images(images)
    n = len(images)
    if n == 0:
        raise ValueError("digit_grid got no images")
    if labels is None:
        if predictions is not None:
            raise ValueError("predictions need labels, to tell which are "
                             "wrong: pass labels=y too")
        captions = [""] * n
        return _image_grid(images, captions, ncols=ncols, title=title)
    labels = as_labels(labels, "labels", n)
    if predictions is None:
        captions = [str(t) for t in labels]
        return _image_grid(images, captions, ncols=ncols, title=title)
    predictions = as_labels(predictions, "predictions", n)
    wrong = predictions != labels
    captions = [f"pred {p}\ntrue {t}" if w else str(t)
                for p, t, w in zip(predictions, labels, wrong)]
    colors = [WRONG if w else INK for w in wrong]
    if title is None:
        title = f"{wrong.sum()} of {n} predictions wrong (framed)"
    return _image_grid(images, captions, ncols=ncols, title=title,
                       marked=wrong, caption_colors=colors)


@_styled
def class_distribution(y_train, y_test=None, num_classes=10):
    """Bar chart of how many images each digit has, one panel per split."""
    splits = {"training set": as_labels(y_train, "y_train")}
    if y_test is not None:
        splits["test set"] = as_labels(y_test, "y_test")
    fig, axes = subplots(1, len(splits), figsize=(4.4 * len(splits), 3.4))
    for ax, color, (name, y) in zip(axes.flat, PALETTE, splits.items()):
        counts = np.bincount(y, minlength=num_classes)
        bars = ax.bar(np.arange(len(counts)), counts, color=color, width=0.75)
        ax.bar_label(bars, fontsize=9, padding=2)
        ax.axhline(len(y) / len(counts), color=INK, lw=1, ls="--",
                   label="equal share")
        ax.set_xticks(np.arange(len(counts)))
        ax.set_ylim(0, counts.max() * 1.15)
        ax.set_xlabel("digit")
        ax.set_ylabel("images")
        ax.set_title(f"{name}: {len(y):,} images")
        ax.grid(axis="x", visible=False)
        ax.legend(loc="lower right")
    return fig


@_styled
def mean_images(X, y):
    """The average image of each digit: a class "on average"."""
    images = as_images(X)
    y = as_labels(y, "y", len(images))
    classes = np.unique(y)
    means = np.stack([images[y == c].mean(axis=0) for c in classes])
    captions = [f"{c}\nn={np.sum(y == c):,}" for c in classes]
    return _image_grid(means, captions, ncols=len(classes), cell=0.85,
                       title="Mean image of each digit")


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------
@_styled
def plot_confusion_matrix(cm, title=None):
    """The confusion matrix with its counts; colour on a log scale above 1,
    so that a handful of errors is still visibly coloured."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or (cm < 0).any():
        raise ValueError("cm must be a square matrix of counts, e.g. from "
                         "nnlib.metrics.confusion_matrix(y_true, y_pred); "
                         f"got {cm.shape}")
    n = len(cm)
    total, correct = cm.sum(), np.trace(cm)
    fig, axes = subplots(figsize=(0.5 * n + 1.6, 0.5 * n + 0.9))
    ax = axes[0, 0]
    norm = SymLogNorm(linthresh=1, linscale=0.5, vmin=0,
                      vmax=max(cm.max(), 1), base=10)
    im = ax.imshow(cm, cmap="Blues", norm=norm)
    for (t, p), count in np.ndenumerate(cm):
        dark = norm(count) > 0.6
        ax.text(p, t, str(count), ha="center", va="center",
                fontsize=9.5 if n <= 10 else 7.5,
                color="white" if dark else (INK if count else "#bbbbbb"))
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.grid(False)
    ax.spines[:].set_visible(False)
    ticks = [0] + [10 ** e for e in
                   range(int(np.log10(max(cm.max(), 1))) + 1)]
    bar = fig.colorbar(im, ax=ax, label="images (log scale)", shrink=0.85,
                       ticks=ticks)
    bar.ax.set_yticklabels([f"{t:,}" for t in ticks])
    bar.ax.minorticks_off()
    if title is None:
        acc = correct / total if total else float("nan")
        title = (f"Confusion matrix: {acc:.2%} correct, "
                 f"{total - correct:,} errors")
    ax.set_title(title)
    return fig


def _check_probs(probs, n):
    probs = np.asarray(probs)
    if probs.ndim != 2 or len(probs) != n:
        raise ValueError(f"probs must have shape ({n}, num_classes), got "
                         f"{probs.shape}")
    if (probs < 0).any() or not np.allclose(probs.sum(axis=1), 1, atol=1e-3):
        raise ValueError("probs must be probabilities (rows summing to 1); "
                         "for logits pass nnlib.losses.softmax(logits)")
    return probs


@_styled
def most_confident_mistakes(images, y_true, probs, k=12, ncols=6):
    """The k wrong predictions the model was surest of."""
    images = as_images(images)
    y_true = as_labels(y_true, "y_true", len(images))
    probs = _check_probs(probs, len(images))
    pred = probs.argmax(axis=1)
    confidence = probs[np.arange(len(pred)), pred]
    wrong = np.flatnonzero(pred != y_true)
    if len(wrong) == 0:
        fig, axes = subplots(figsize=(4, 1.2))
        axes[0, 0].set_axis_off()
        axes[0, 0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
        return fig
    top = wrong[np.argsort(-confidence[wrong], kind="stable")][:k]
    captions = [f"pred {pred[i]} ({confidence[i]:.1%})\ntrue {y_true[i]}"
                for i in top]
    return _image_grid(
        images[top], captions, ncols=ncols, cell=1.15,
        title=f"The {len(top)} most confident of {len(wrong):,} mistakes")


# ---------------------------------------------------------------------------
# Convolutions
# ---------------------------------------------------------------------------
def _weight_array(weight):
    """Accept an array or a Parameter (anything with ``.data``)."""
    if not isinstance(weight, np.ndarray) and hasattr(weight, "data"):
        weight = weight.data
    return np.asarray(weight)


@_styled
def conv_filters(weight, title=None, max_panels=256):
    """Convolution filters, blue negative, red positive, white zero.

    ``weight`` is (out, in, kH, kW). With one input channel: one panel per
    filter. With more: a grid of out rows by in columns, or, if that would
    be more than ``max_panels`` panels (or 16 columns), each filter's mean
    over its inputs.
    """
    w = _weight_array(weight)
    if w.ndim != 4:
        raise ValueError("conv_filters expects a Conv2d weight of shape "
                         f"(out, in, kH, kW), got {w.shape}")
    n_out, n_in = w.shape[:2]
    shape = " × ".join(map(str, w.shape))
    note = ""
    if n_in > 16 or n_out * n_in > max_panels:
        w = w.mean(axis=1, keepdims=True)
        note = f" (mean over {n_in} input channels)"
        n_in = 1
    if n_in == 1:
        ncols = min(n_out, 8)
        nrows = math.ceil(n_out / ncols)
        panels = [(i, 0) for i in range(n_out)]
    else:
        nrows, ncols = n_out, n_in
        panels = [(i, j) for i in range(n_out) for j in range(n_in)]
    cell = 0.75 if len(panels) <= 64 else 0.45
    fig, axes = subplots(nrows, ncols, figsize=(
        ncols * cell + 1.3, nrows * cell + 0.7))
    m = float(np.abs(w).max()) or 1.0
    for ax in axes.flat[len(panels):]:
        ax.remove()
    for ax, (i, j) in zip(axes.flat, panels):
        im = ax.imshow(w[i, j], cmap="RdBu_r", vmin=-m, vmax=m)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        _frame(ax)
        if n_in == 1:
            ax.set_title(str(i), fontsize=9, pad=2)
        else:
            if i == 0:
                ax.set_title(f"in {j}", fontsize=9, pad=2)
            if j == 0:
                ax.set_ylabel(f"out {i}", fontsize=9)
    fig.colorbar(im, ax=fig.axes, shrink=0.8 if nrows < 6 else 0.4,
                 label="weight")
    fig.suptitle((title or f"Filters of a Conv2d weight {shape}") + note)
    return fig


@_styled
def feature_maps(model, x, layers=None, max_channels=8):
    """One image on its way through a Sequential model, layer by layer.

    Shows the input, then the channels after each layer in ``layers``
    (indices into ``model.layers``; by default every layer whose
    ``shows_features`` is True, the activations and max pools, while its
    output is still an image). The model runs in
    evaluation mode, and its previous mode is restored afterwards.
    """
    seq = getattr(model, "layers", None)
    if seq is None:
        raise TypeError("feature_maps needs a Sequential model (with "
                        f".layers), got {type(model).__name__}")
    x = np.asarray(x)
    while x.ndim < 4:                  # (H, W) or (C, H, W): one image
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError("feature_maps shows one image: pass x of shape "
                         f"(1, C, H, W), e.g. X[:1]; got {x.shape}")
    if layers is None:
        chosen = [i for i, layer in enumerate(seq)
                  if layer.shows_features]
    else:
        chosen = sorted({i % len(seq) for i in layers})
    was_training = model.training
    model.eval()
    stages = [("input", np.array(x[0], dtype=float))]
    try:
        h = x
        for i, layer in enumerate(seq[:max(chosen, default=-1) + 1]):
            h = layer.forward(h)
            if i not in chosen:
                continue
            if h.ndim != 4:
                if layers is None:
                    break        # the default stops where images end
                raise ValueError(f"layer {i} ({layer!r}) gives shape "
                                 f"{h.shape}, not images (1, C, H, W)")
            stages.append((f"layer {i}: {layer!r}", np.array(h[0], float)))
    finally:
        model.train(was_training)

    ncols = min(max_channels, max(len(s) for _, s in stages))
    fig = figure((ncols * 1.05 + 0.3, len(stages) * 1.5))
    rows = fig.subfigures(len(stages), 1)
    for row, (name, maps) in zip(np.atleast_1d(rows), stages):
        shown = maps[:max_channels]
        c, hh, ww = maps.shape
        more = (f", first {len(shown)} of {c} channels" if c > len(shown)
                else "")
        row.suptitle(f"{name}   ({c} × {hh} × {ww}{more})", x=0.01,
                     ha="left", fontsize=10.5)
        axes = row.subplots(1, ncols, squeeze=False)[0]
        cmap = "gray_r" if name == "input" else "viridis"
        vmin, vmax = float(shown.min()), float(shown.max())
        for k, ax in enumerate(axes):
            if k >= len(shown):
                ax.remove()
                continue
            ax.imshow(shown[k], cmap=cmap, vmin=vmin,
                      vmax=vmax if vmax > vmin else vmin + 1)
            ax.set_axis_off()
            if name != "input":
                ax.set_title(f"ch {k}", fontsize=9, pad=2)
    return fig


# ---------------------------------------------------------------------------
# Initialisation: activations layer by layer
# ---------------------------------------------------------------------------
def _named(arrays_by_layer, prefix="layer"):
    """A dict name -> value from a dict, or a list (named layer 1, 2...)."""
    if isinstance(arrays_by_layer, Mapping):
        return dict(arrays_by_layer)
    return {f"{prefix} {i + 1}": a for i, a in enumerate(arrays_by_layer)}


@_styled
def activation_histograms(arrays_by_layer, title=None, bins=50, xlim=None,
                          max_cols=5):
    """One histogram per layer of its activations, with their std.

    ``arrays_by_layer``: a dict name -> array, or a list of arrays. ``xlim``
    (lo, hi) gives every panel the same x range.
    """
    named = _named(arrays_by_layer)
    if not named:
        raise ValueError("activation_histograms got no layers")
    nrows = math.ceil(len(named) / max_cols)
    ncols = math.ceil(len(named) / nrows)      # rows as full as possible
    fig, axes = subplots(nrows, ncols, figsize=(1.8 * ncols + 0.4,
                                                1.6 * nrows + 0.5),
                         sharex=xlim is not None)
    for ax in axes.flat[len(named):]:
        ax.remove()
    for ax, (name, a) in zip(axes.flat, named.items()):
        a = np.asarray(a, dtype=float).ravel()
        finite = a[np.isfinite(a)]
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.grid(False)
        ax.tick_params(axis="x", labelsize=9.5, labelbottom=True)
        if finite.size == 0:
            ax.set_title(name, fontsize=10.5)
            ax.text(0.5, 0.5, "no finite values", transform=ax.transAxes,
                    ha="center", va="center", color=WRONG)
            continue
        counts, edges = np.histogram(finite, bins=bins, range=xlim)
        ax.stairs(counts, edges, fill=True, color=PALETTE[0], alpha=0.85)
        bad = a.size - finite.size
        ax.set_title(f"{name}: std {finite.std():.3g}"
                     + (f"\n({bad:,} inf/nan left out)" if bad else ""),
                     fontsize=10.5)
    if title:
        fig.suptitle(title)
    return fig


@_styled
def layer_stats(stats_by_scheme, title=None, ylabel="std of activations"):
    """A line per scheme of a statistic (e.g. the std) at each layer, log y.

    ``stats_by_scheme``: {'N(0,1)': [..], 'Xavier': [..], 'He': [..]}.
    Zeros, infinities and NaNs (a collapsed or exploded network) leave gaps.
    """
    fig, axes = subplots(figsize=(6, 3.6))
    ax = axes[0, 0]
    markers = "osD^vP*X"
    for k, (name, values) in enumerate(stats_by_scheme.items()):
        v = np.asarray(values, dtype=float)
        v = np.where(np.isfinite(v) & (v > 0), v, np.nan)
        ax.plot(np.arange(1, len(v) + 1), v, marker=markers[k % 8],
                label=name, ms=5)
    log_y(ax)
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    ax.legend()
    ax.set_title(title or f"{ylabel.capitalize()} layer by layer")
    return fig


@_styled
def plot_dead_relu_fraction(fractions, title=None):
    """Bars of the dead fraction per layer, as from
    ``metrics.dead_relu_fraction``.

    ``fractions``: per layer (dict or list), or a dict scheme -> per layer,
    drawn as groups of bars.
    """
    nested = isinstance(fractions, Mapping) and any(
        isinstance(v, (Mapping, list, tuple, np.ndarray))
        for v in fractions.values())
    if nested:
        by_scheme = {k: _named(v) for k, v in fractions.items()}
    else:
        by_scheme = {"": _named(fractions)}
    layers = list(dict.fromkeys(k for v in by_scheme.values() for k in v))
    width = 0.8 / len(by_scheme)
    fig, axes = subplots(figsize=(max(4.5, 0.7 * len(layers) * (
        1 + 0.3 * len(by_scheme)) + 1.5), 3.4))
    ax = axes[0, 0]
    x = np.arange(len(layers))
    for k, (scheme, per_layer) in enumerate(by_scheme.items()):
        pct = [100 * per_layer.get(name, np.nan) for name in layers]
        bars = ax.bar(x + (k - (len(by_scheme) - 1) / 2) * width, pct,
                      width=width * 0.92, label=scheme or None,
                      color=PALETTE[k % len(PALETTE)])
        ax.bar_label(bars, fmt="%.0f%%", fontsize=9, padding=1)
    ax.set_xticks(x, layers, rotation=0 if len(layers) < 8 else 45)
    ax.set_ylim(0, 108)
    ax.set_ylabel("dead units (%)")
    ax.grid(axis="x", visible=False)
    if len(by_scheme) > 1:
        ax.legend()
    ax.set_title(title or "Units that never fire on this batch")
    return fig


# ---------------------------------------------------------------------------
# Training: learning rates
# ---------------------------------------------------------------------------
def _stairs(ax, values, start, **kwargs):
    """Value i held flat from x = start + i to start + i + 1."""
    x = start + np.arange(len(values) + 1)
    ax.plot(x, np.r_[values, values[-1]], drawstyle="steps-post", **kwargs)


@_styled
def lr_sweep(results, title=None, ylabel="validation accuracy (%)"):
    """Accuracy against learning rate (log x), a line per optimiser.

    ``results``: {optimiser: {lr: accuracy as a fraction}}. The best learning
    rate of each is circled; a NaN accuracy (diverged) is a cross on the
    bottom edge. The y axis spans the accuracies reached, not 0-100%.
    """
    fig, axes = subplots(figsize=(6, 3.8))
    ax = axes[0, 0]
    any_diverged = False
    # crosses sit on the bottom edge, whatever the y range
    bottom = ax.get_xaxis_transform()
    finite = []
    for k, (color, (name, by_lr)) in enumerate(zip(PALETTE * 2,
                                                   results.items())):
        lrs = np.array(sorted(by_lr), dtype=float)
        acc = np.array([by_lr[lr] for lr in sorted(by_lr)], dtype=float)
        if np.nanmax(acc, initial=0) > 1:
            raise ValueError(f"{name}: accuracies must be fractions in "
                             "[0, 1]; divide percentages by 100")
        ax.plot(lrs, 100 * acc, marker="o", ms=5, color=color, label=name)
        bad = ~np.isfinite(acc)
        finite.extend(100 * acc[~bad])
        if bad.any():
            ax.plot(lrs[bad], np.zeros(bad.sum()), "x", color=color, ms=8,
                    mew=2, clip_on=False, transform=bottom)
            any_diverged = True
        if (~bad).any():
            best = np.nanargmax(acc)
            ax.plot(lrs[best], 100 * acc[best], "o", ms=13, mfc="none",
                    mec=color, mew=1.5)
            # labels of neighbouring optimisers are staggered in height
            ax.annotate(f"{lrs[best]:g}: {acc[best]:.1%}",
                        (lrs[best], 100 * acc[best]),
                        xytext=(0, 10 + 11 * (k % 3)),
                        textcoords="offset points", ha="center",
                        fontsize=10, color=color)
    ax.set_xscale("log")
    # zoom on the accuracies reached: differences of a point stay visible
    low = min(finite, default=0.0)
    low = max(0.0, 5 * np.floor((low - 2) / 5))
    ax.set_ylim(low, 100 + 0.18 * (100 - low))
    ax.set_yticks(np.arange(low, 100.1, 5 if 100 - low <= 30 else 20))
    ax.set_xlabel("learning rate")
    ax.set_ylabel(ylabel)
    handles, _ = ax.get_legend_handles_labels()
    if any_diverged:
        handles.append(Line2D([], [], ls="", marker="x", color=INK, ms=8,
                              mew=2, label="diverged (NaN)"))
    ax.legend(handles=handles, loc="lower left")
    ax.set_title(title or "Learning-rate sweep (best circled)")
    return fig


@_styled
def lr_schedules(schedules_by_name, num_epochs, title=None, log=False):
    """Learning rate in each epoch for several schedules.

    ``schedules_by_name``: {name: [lr of epoch 1, ..., lr of epoch n]}; each
    epoch is drawn as a flat step, since the rate changes between epochs.
    """
    fig, axes = subplots(figsize=(6, 3.4))
    ax = axes[0, 0]
    styles = ("-", "--", "-.", ":")
    for k, (name, lrs) in enumerate(schedules_by_name.items()):
        lrs = np.asarray(lrs, dtype=float)
        if len(lrs) != num_epochs:
            raise ValueError(f"schedule {name!r} has {len(lrs)} values, "
                             "expected one per epoch "
                             f"(num_epochs={num_epochs})")
        _stairs(ax, lrs, 0, label=name, lw=2, ls=styles[k % 4],
                color=PALETTE[k % len(PALETTE)])
    if log:
        log_y(ax)
    else:
        ax.set_ylim(bottom=0)
    ax.set_xlim(0, num_epochs)
    ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.legend()
    ax.set_title(title or "Learning-rate schedules")
    return fig


# ---------------------------------------------------------------------------
# im2col, drawn
# ---------------------------------------------------------------------------
def _cells(ax, x0, y0, labels, *, fills=None, fontsize=10, color=INK):
    """A table of unit squares whose top-left corner is (x0, y0), y down."""
    labels = np.asarray(labels, dtype=object)
    for (r, c), text in np.ndenumerate(labels):
        fill = "white" if fills is None or fills[r][c] is None else fills[r][c]
        ax.add_patch(Rectangle((x0 + c, y0 + r), 1, 1, fc=fill,
                               ec="#888888", lw=0.8))
        ax.text(x0 + c + 0.5, y0 + r + 0.5, text, ha="center", va="center",
                fontsize=fontsize, color=color)


def _light(color, amount=0.7):
    """``color`` mixed with white."""
    rgb = np.array(mpl.colors.to_rgb(color))
    return tuple(rgb + (1 - rgb) * amount)


@_styled
def im2col_picture(input_size=4, kernel_size=3, highlight=(0, -1)):
    """How im2col turns a convolution into one matrix product.

    Each kernel-sized patch of the input becomes one row of a matrix;
    multiplying that matrix by the flattened kernel gives every output at
    once. Patches in ``highlight`` (indices in row-major output order) are
    coloured, with arrows from the patch to its row and its output.
    """
    s, k = input_size, kernel_size
    if not 1 <= k <= s <= 6:
        raise ValueError("a picture for a tiny example: need 1 <= "
                         f"kernel_size <= input_size <= 6, got {k}, {s}")
    o = s - k + 1                      # output side (stride 1, no padding)
    pixels = np.arange(1, s * s + 1).reshape(s, s)
    # rows of the matrix: patch (i, j) flattened in row-major order
    rows = np.array([pixels[i:i + k, j:j + k].ravel()
                     for i in range(o) for j in range(o)])
    picks = list(dict.fromkeys(p % (o * o) for p in highlight))
    colors = {p: PALETTE[[0, 1, 2, 4][n % 4]] for n, p in enumerate(picks)}

    # Layout in cell units, y pointing down. Left: input above kernel;
    # middle: the matrix above w.ravel(); right: outputs, then reshaped.
    mx = s + 2.8                                 # matrix left edge
    cx = mx + k * k + 1.8                        # output column left edge
    gx = cx + 3.2                                # output grid left edge
    ky = s + 2.0                                 # kernel top edge
    wy = o * o + 0.8                             # w.ravel() top edge
    width, top = gx + o + 0.4, -1.9
    bottom = max(wy + 2.0, ky + k + 0.3)
    unit = 0.38                                  # inches per cell
    fig, axes = subplots(figsize=(unit * width,
                                  unit * (bottom - top) + 0.5))
    ax = axes[0, 0]
    ax.set_axis_off()
    ax.set_aspect("equal")

    def heading(x, text, y=-0.35):
        ax.text(x, y, text, ha="center", va="bottom", fontsize=10,
                linespacing=1.3)

    light = {p: _light(c) for p, c in colors.items()}
    _cells(ax, 0, 0, pixels)
    heading(s / 2, f"input x\n{s} × {s}")
    _cells(ax, (s - k) / 2, ky, [[f"$w_{{{r * k + c + 1}}}$"
                                  for c in range(k)] for r in range(k)])
    heading(s / 2, f"kernel w\n{k} × {k}", ky - 0.35)

    _cells(ax, mx, 0, rows, fills=[[light.get(p)] * (k * k)
                                   for p in range(o * o)])
    heading(mx + k * k / 2, f"cols = im2col(x)\n{o * o} × {k * k}")
    _cells(ax, mx, wy, [[f"$w_{{{j + 1}}}$" for j in range(k * k)]],
           fills=[["#f2f2f2"] * (k * k)])
    ax.text(mx - 0.25, wy + 0.5, "w.ravel()", ha="right", va="center",
            fontsize=9.5)
    ax.text(mx + k * k / 2, wy + 1.3, "output = row · w.ravel(), "
            "for every row at once", ha="center", va="top", fontsize=9,
            color="#555555")

    outs = [f"$y_{{{p + 1}}}$" for p in range(o * o)]
    _cells(ax, cx, 0, [[y] for y in outs],
           fills=[[light.get(p)] for p in range(o * o)])
    heading(cx + 0.5, f"cols @ w.ravel()\n{o * o}")
    ax.text(cx - 0.9, o * o / 2, "=", ha="center", va="center", fontsize=16)
    _cells(ax, gx, 0, np.reshape(outs, (o, o)),
           fills=[[light.get(i * o + j) for j in range(o)] for i in range(o)])
    heading(gx + o / 2, f"output\n{o} × {o}")
    ax.annotate("", (gx - 0.2, o / 2), (cx + 1.2, o / 2),
                arrowprops=dict(arrowstyle="->", color="#555555"))
    ax.text((cx + 1 + gx) / 2, o / 2 - 0.2, "reshape", ha="center",
            va="bottom", fontsize=8.5, color="#555555")

    for n, p in enumerate(picks):
        i, j = divmod(p, o)
        inset = 0.07 + 0.09 * n
        ax.add_patch(Rectangle((j + inset, i + inset), k - 2 * inset,
                               k - 2 * inset, fill=False, ec=colors[p],
                               lw=2.5))
        ax.add_patch(Rectangle((mx, p), k * k, 1, fill=False, ec=colors[p],
                               lw=2.5))
        ax.annotate("", (mx - 0.1, p + 0.5), (j + k - inset, i + 0.5),
                    arrowprops=dict(arrowstyle="->", color=colors[p], lw=1.8,
                                    shrinkA=0, shrinkB=0,
                                    connectionstyle="arc3,rad=-0.15"))
    ax.set_xlim(-0.2, width - 0.2)
    ax.set_ylim(bottom, top)
    ax.set_title("im2col: every patch becomes a row, and the convolution "
                 "one matrix product", fontsize=11.5)
    return fig


show_sharp()
