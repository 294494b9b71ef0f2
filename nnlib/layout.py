"""Channels last: how 4-D activations lie in memory, and views between shapes.

An activation of shape (N, C, H, W) is stored as (N, H, W, C) memory, as
PyTorch's ``channels_last`` memory format does (chapter 4, "Aside: channels
last in memory"). The reader sees (N, C, H, W); the kernels see the
(N*H*W, C) matrix with a row per pixel and a column per channel, which is
what a convolution's matrix product gives and what BatchNorm's per-channel
sums run down. These helpers move between the two without copying when the
memory allows; every module that needs them imports them from here.
"""
import numpy as np

__all__ = ["as_rows", "from_rows", "rows_view", "channels_last",
           "channels_last_copy", "flat"]


def as_rows(x):
    """(N, C) stays; (N, C, H, W) becomes the (N*H*W, C) matrix with a row
    per pixel and a column per channel (a view if x is channels-last, a
    copy otherwise)."""
    if x.ndim == 2:
        return x
    return x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])


def from_rows(rows, shape):
    """Undo ``as_rows``: an (N, C, H, W) view of (N*H*W, C) rows (the rows
    themselves if ``shape`` is 2-D)."""
    if len(shape) == 2:
        return rows
    n, c, h, w = shape
    return rows.reshape(n, h, w, c).transpose(0, 3, 1, 2)


def channels_last(x):
    """An (N, C, H, W) array as contiguous (N, H, W, C) memory: a view if it
    is channels-last already, else a copy."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def channels_last_copy(x):
    """A new (N, C, H, W) array equal to x, channels-last in memory, that
    nobody else holds (so it may be written in place); 2-D arrays are
    copied as they are."""
    if x.ndim == 4:
        return x.transpose(0, 2, 3, 1).copy().transpose(0, 3, 1, 2)
    return x.copy()


def flat(x):
    """x's values as a 1-D view in memory order (row-major, or
    channels-last for 4-D), or None if x is neither contiguous layout."""
    if x.flags.c_contiguous:
        return x.reshape(-1)
    if x.ndim == 4:
        t = x.transpose(0, 2, 3, 1)
        if t.flags.c_contiguous:
            return t.reshape(-1)
    return None


def rows_view(x):
    """x's values as an (M, C) matrix *view* (4-D read channels-last, 2-D as
    it is), or None when x's layout does not allow a view."""
    rows = x.transpose(0, 2, 3, 1) if x.ndim == 4 else x
    return rows.reshape(-1, x.shape[1]) if rows.flags.c_contiguous else None
