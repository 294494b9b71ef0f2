"""Averaging predictions: over several networks (an ensemble), and over
shifted copies of each image (test-time augmentation).

Networks trained from different seeds make different mistakes. Averaging
their softmax probabilities keeps what they agree on and lets a confident
majority outvote one member's slip, so the average is usually right more
often than any member. Test-time augmentation does the same with one
network and copies of the image moved by a pixel: a digit the network
misreads at one position may be read correctly at the others.
"""
import numpy as np

from .augment import shift_rotate
from .losses import softmax
from .train import predict

# The image itself and its four one-pixel moves (rows down, columns right).
ONE_PIXEL_SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))


def predict_proba(model, X, shifts=((0, 0),), batch_size=256):
    """Softmax probabilities (N, classes) of ``model`` for images ``X``
    (N, C, H, W), averaged over copies of ``X`` moved by each of
    ``shifts`` (whole pixels, (rows down, columns right), background
    filled in). The default, no shift, is the model's own prediction."""
    shifts = np.asarray(shifts, dtype=np.int64).reshape(-1, 2)
    if len(shifts) == 0:
        raise ValueError("shifts must list at least one (rows, columns) "
                         "move, e.g. ((0, 0),)")
    total = 0.0
    for dy, dx in shifts:
        moved = X if dy == dx == 0 else shift_rotate(X, 0.0, (dy, dx))
        total = total + softmax(predict(model, moved, batch_size))
    return total / len(shifts)


def member_probabilities(models, X, shifts=((0, 0),), batch_size=256):
    """Each model's ``predict_proba``, stacked: (members, N, classes).

    The ensemble's prediction is their mean over the first axis; keeping
    the members apart shows where they disagree."""
    models = list(models)
    if not models:
        raise ValueError("an ensemble needs at least one model")
    return np.stack([predict_proba(m, X, shifts, batch_size)
                     for m in models])
