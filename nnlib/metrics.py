"""Numbers computed from labels, predictions and activations: no drawing.

``plots`` draws these numbers, and the command line prints them; both take
them from here, so counting the errors of a model needs NumPy and nothing
of Matplotlib.

- ``confusion_matrix(y_true, y_pred)``: how often each digit was taken for
  each other one;
- ``dead_relu_fraction(activations_by_layer)``: the share of ReLU units that
  never fire on a batch, layer by layer;
- ``as_labels(y, name)``: the check of class indices both use (and
  ``plots`` too, for captions).
"""
from collections.abc import Mapping

import numpy as np

__all__ = ["as_labels", "confusion_matrix", "dead_relu_fraction"]


def as_labels(y, name, n=None):
    """``y`` as a 1-D array of integer class indices, or a ValueError that
    says what is wrong with it; ``n``: how many entries it must have."""
    y = np.asarray(y)
    if y.ndim != 1:
        hint = (" (for scores or probabilities, take .argmax(axis=1))"
                if y.ndim == 2 else "")
        raise ValueError(f"{name} must be 1-D class indices, got shape "
                         f"{y.shape}{hint}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {y.dtype}")
    if n is not None and len(y) != n:
        raise ValueError(f"{name} has {len(y)} entries for {n} images")
    return y


def confusion_matrix(y_true, y_pred, num_classes=10):
    """Counts ``cm[t, p]`` of images of true class t predicted as class p.

    The diagonal holds the right answers, so ``np.trace(cm) / cm.sum()`` is
    the accuracy and row t off the diagonal lists what digit t was taken for.
    """
    y_true = as_labels(y_true, "y_true")
    y_pred = as_labels(y_pred, "y_pred", len(y_true))
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{name} has values outside 0..{num_classes - 1};"
                             " pass num_classes=")
    # each (t, p) pair gets its own bin t * num_classes + p
    flat = np.bincount(y_true * num_classes + y_pred,
                       minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def dead_relu_fraction(activations_by_layer):
    """Fraction of dead units in each layer.

    A unit (one entry of an example's activation: a neuron, or one channel
    at one position) is dead on this batch if its output is 0 for every
    example; give each layer's ReLU outputs with the batch on axis 0.
    Returns floats in the container given: a dict or a list.
    """
    def fraction(a):
        a = np.asarray(a)
        if a.ndim < 2:
            raise ValueError("each layer's activations need a batch axis "
                             f"first, (N, ...); got shape {a.shape}")
        return float(np.all(a <= 0, axis=0).mean())

    if isinstance(activations_by_layer, Mapping):
        return {k: fraction(a) for k, a in activations_by_layer.items()}
    return [fraction(a) for a in activations_by_layer]
