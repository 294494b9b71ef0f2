"""Data augmentation of a whole batch: random shifts, rotations and
elastic distortions.

A digit moved by a pixel or two, or turned by a few degrees, is still the
same digit. Training on such variations, drawn afresh for every batch,
shows the network more of the ways a digit can be written.

Everything is done for the whole batch at once, with no loop over images
(the source project rotated one image at a time in Python, which cost more
than the training step itself). Each output pixel asks "where in the input
do I come from?": an affine map of its coordinates, one per image, gives a
point between four input pixels, and bilinear interpolation mixes them.
With angle 0 and whole-pixel shifts the point is exactly a pixel, so a
shift is an exact copy of the pixels (as ``np.roll``, with the pixels that
roll off the edge replaced by the background). An elastic distortion
gives every pixel its own smooth random displacement instead of one map
per image (``random_elastic``).

Use it in training as ``fit(..., augment=random_shift_rotate)``: ``fit``
calls ``augment(X_batch, rng)`` on every training batch.
"""
import math
from numbers import Integral, Real

import numpy as np

from .init import _check_rng


def shift_rotate(X, degrees, shifts, *, fill=None):
    """Rotate image n by ``degrees[n]`` about its centre, then shift it.

    ``X`` (N, C, H, W) floating point; ``degrees`` (N,), positive turns
    the digit anticlockwise as it is drawn (row 0 at the top), as
    ``np.rot90`` does; ``shifts`` (N, 2) of (rows down, columns right),
    so that ``out[n, :, i, j] = X[n, :, i - dy, j - dx]`` for a shift alone.
    Where a pixel comes from outside the image it gets ``fill``: by default
    ``X.min()``, the background of an MNIST batch however it is scaled.

    Returns a new array of the shape and dtype of ``X``.
    """
    X = _check_images(X)
    n, c, h, w = X.shape
    try:
        angles = np.broadcast_to(np.asarray(degrees, np.float64), (n,))
        moves = np.broadcast_to(np.asarray(shifts, np.float64), (n, 2))
    except ValueError:
        raise ValueError(f"for {n} images, degrees must have shape ({n},) "
                         f"and shifts ({n}, 2) (or broadcast to them); got "
                         f"{np.shape(degrees)} and {np.shape(shifts)}"
                         ) from None
    if n == 0:
        return X.copy()
    fill = X.min() if fill is None else fill

    # Output pixel p = (row, col), centred: u = p - centre - shift. The row
    # part depends on (image, row) only and the column part on (image,
    # column) only, so each is computed on its own axis, (N, H) and (N, W),
    # and broadcast: the same operations on the same numbers as over all
    # N*H*W pixels.
    centre_r, centre_c = (h - 1) / 2, (w - 1) / 2
    u_r = (np.arange(h) - centre_r) - moves[:, :1]                # (N, H)
    u_c = (np.arange(w) - centre_c) - moves[:, 1:]                # (N, W)
    # Turning the image by +theta means reading the input at -theta:
    # (r, c) <- (cos * u_r + sin * u_c, -sin * u_r + cos * u_c).
    theta = np.deg2rad(angles)[:, None]
    cos, sin = np.cos(theta), np.sin(theta)
    src_r = (cos * u_r)[:, :, None] + (sin * u_c)[:, None, :]     # (N, H, W)
    src_r += centre_r
    src_c = (cos * u_c)[:, None, :] - (sin * u_r)[:, :, None]
    src_c += centre_c
    src_r, src_c = src_r.reshape(n, h * w), src_c.reshape(n, h * w)
    return _bilinear(X, src_r, src_c, fill)


def _bilinear(X, src_r, src_c, fill):
    """Sample every image of ``X`` (N, C, H, W) at the points
    ``(src_r, src_c)`` (each (N, H*W), in input pixel coordinates) by
    bilinear interpolation; points outside the image see ``fill``."""
    n, c, h, w = X.shape
    # Pad every image with `pad` pixels of `fill`, enough that the four
    # pixels around every point are inside the padded image: no checks
    # of the edges are then needed.
    pad = max(0, math.ceil(-min(src_r.min(), src_c.min())),
              math.floor(src_r.max()) - h + 2,
              math.floor(src_c.max()) - w + 2)
    padded = np.pad(X, ((0, 0), (0, 0), (pad, pad), (pad, pad)),
                    constant_values=fill)
    hp, wp = h + 2 * pad, w + 2 * pad
    # Now src + pad >= 0, so truncating to an integer rounds down. (The
    # arithmetic below is written in place, on arrays this function owns.)
    src_r, src_c = src_r + pad, src_c + pad
    r0, c0 = src_r.astype(np.intp), src_c.astype(np.intp)
    wr = np.subtract(src_r, r0, out=src_r).astype(X.dtype)     # src_r - r0
    wc = np.subtract(src_c, c0, out=src_c).astype(X.dtype)

    # The flat index, in the whole padded batch, of each point's top-left
    # pixel: image n, channel k, pixel (r0, c0). The same point serves
    # every channel of an image.
    image = (np.arange(n) * c)[:, None, None] + np.arange(c)[:, None]
    r0 *= wp
    r0 += c0                                                   # r0 * wp + c0
    top_left = image * (hp * wp) + r0[:, None, :]              # (N, C, H*W)
    pixels = padded.ravel()
    # pixels[offset:][top_left] is pixels[top_left + offset], without
    # computing the shifted indices.
    v00, v01, v10, v11 = (pixels[offset:][top_left]
                          for offset in (0, 1, wp, wp + 1))
    # Bilinear: mix left and right, then top and bottom. With weights 0
    # (a whole-pixel shift) this returns v00 exactly. In place:
    # top = v00 + wc * (v01 - v00) into v01, bottom = v10 + wc * (v11 - v10)
    # into v11, then top + wr * (bottom - top).
    wr, wc = wr[:, None, :], wc[:, None, :]
    for near, far in ((v00, v01), (v10, v11)):
        far -= near
        far *= wc
        far += near
    top, out = v01, v11
    out -= top
    out *= wr
    out += top
    return out.reshape(n, c, h, w)


def random_shift_rotate(X, rng, max_shift=2, max_degrees=10, *, fill=None):
    """Each image turned by a random angle and moved by a random shift.

    Angles are uniform in [-max_degrees, max_degrees]; shifts are whole
    pixels, each of (rows, columns) uniform in -max_shift..max_shift. Every
    image gets its own draw from ``rng``. ``X`` is (N, C, H, W); the result
    has its shape and dtype. See ``shift_rotate`` for ``fill``.

    This is the ``augment(X_batch, rng)`` that ``nnlib.train.fit`` takes;
    for other limits, wrap it: ``lambda X, rng: random_shift_rotate(X, rng,
    max_degrees=15)``.
    """
    X = _check_images(X)
    rng = _check_rng(rng)
    if not (isinstance(max_shift, Integral) and max_shift >= 0):
        raise ValueError("max_shift must be a whole number of pixels >= 0, "
                         f"got {max_shift!r}")
    if not (isinstance(max_degrees, Real) and 0 <= max_degrees <= 180):
        raise ValueError(f"max_degrees must be between 0 and 180, got "
                         f"{max_degrees!r}")
    n = len(X)
    degrees = rng.uniform(-max_degrees, max_degrees, size=n)
    shifts = rng.integers(-max_shift, max_shift + 1, size=(n, 2))
    return shift_rotate(X, degrees, shifts, fill=fill)


def gaussian_matrix(n, sigma, dtype=np.float64):
    """The (n, n) matrix that smooths a length-n signal with a Gaussian.

    ``G[i, k] = g(i - k)``, where ``g`` is the Gaussian of standard
    deviation ``sigma`` (in pixels), cut at 4 sigma and scaled to sum to 1;
    values beyond the ends count as 0. A field ``F`` (H, W) is smoothed in
    both directions by ``G_h @ F @ G_w.T``: the separable 2-D filter as two
    matrix products, for a whole batch at once.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0 pixels, got {sigma!r}")
    radius = int(4 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    offset = np.arange(n)[:, None] - np.arange(n)[None, :]      # i - k
    G = np.where(np.abs(offset) <= radius,
                 taps[np.clip(offset + radius, 0, 2 * radius)], 0.0)
    return G.astype(dtype)


def displace(X, dy, dx, *, fill=None):
    """Move every pixel of every image by its own displacement.

    ``out[n, :, i, j]`` is ``X[n, :]`` read at the point
    ``(i + dy[n, i, j], j + dx[n, i, j])``, by bilinear interpolation;
    ``dy`` and ``dx`` are (N, H, W) in pixels. Points outside the image
    read ``fill`` (default ``X.min()``, the background).
    """
    X = _check_images(X)
    n, c, h, w = X.shape
    if np.shape(dy) != (n, h, w) or np.shape(dx) != (n, h, w):
        raise ValueError(f"for images {X.shape}, dy and dx must have shape "
                         f"{(n, h, w)}; got {np.shape(dy)} and {np.shape(dx)}")
    if n == 0:
        return X.copy()
    fill = X.min() if fill is None else fill
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    src_r = (rows + np.asarray(dy, np.float64)).reshape(n, h * w)
    src_c = (cols + np.asarray(dx, np.float64)).reshape(n, h * w)
    return _bilinear(X, src_r, src_c, fill)


def random_elastic(X, rng, alpha=34.0, sigma=4.0, *, fill=None):
    """Elastic distortion (Simard, Steinkraus and Platt, 2003), per image.

    Each pixel gets a random displacement, uniform in [-1, 1] in each
    direction; the two displacement fields are smoothed with a Gaussian of
    ``sigma`` pixels, so that neighbouring pixels move together, and
    scaled by ``alpha``. A small ``sigma`` gives noise, a large one little
    more than a shift; Simard et al. used ``sigma = 4`` and ``alpha = 34``
    on MNIST. Same signature as ``random_shift_rotate``, for
    ``fit(..., augment=...)``.
    """
    X = _check_images(X)
    rng = _check_rng(rng)
    if not alpha >= 0:
        raise ValueError(f"alpha must be >= 0 pixels, got {alpha!r}")
    n, _, h, w = X.shape
    G_h, G_w = gaussian_matrix(h, sigma), gaussian_matrix(w, sigma)
    fields = rng.uniform(-1.0, 1.0, size=(2, n, h, w))
    dy, dx = alpha * (G_h @ fields @ G_w.T)          # (N, H, W) each
    return displace(X, dy, dx, fill=fill)


def _check_images(X):
    if not isinstance(X, np.ndarray) or X.ndim != 4:
        raise ValueError("augmentation expects a batch of images of shape "
                         f"(N, C, H, W), e.g. (64, 1, 28, 28); got shape "
                         f"{np.shape(X)} (for flat rows of 784 pixels, use "
                         "X.reshape(-1, 1, 28, 28))")
    if not np.issubdtype(X.dtype, np.floating):
        raise TypeError("augmentation expects floating-point images (e.g. "
                        f"from nnlib.data.normalize), got dtype {X.dtype}")
    return X
