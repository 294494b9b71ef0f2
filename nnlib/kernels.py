"""The compute kernels: convolution, max pooling and batch normalisation.

Pure functions, each ``*_forward`` returning ``(out, cache)`` and each
``*_backward`` taking ``(dout, cache)``. Every fast kernel has a naive
reference beside it (``*_naive``) written with plain loops over output
positions: the loops explain, the fast versions run, and the tests prove
that they agree.

Layout. Arguments and results have PyTorch's shape (N, C, H, W). The fast
kernels keep 4-D activations *channels-last in memory* (bytes ordered
N, H, W, C) and hand them back as (N, C, H, W) views, like PyTorch's
``channels_last`` memory format. With channels last, a convolution is one
matrix product whose result already has the layout the next layer wants,
and BatchNorm's per-channel statistics are reductions over the rows of an
(N*H*W, C) matrix, with no transposed copies in between.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "im2col", "col2im", "conv_output_size",
    "conv2d_forward", "conv2d_backward",
    "conv2d_forward_naive", "conv2d_backward_naive",
    "maxpool2d_forward", "maxpool2d_backward",
    "maxpool2d_forward_naive", "maxpool2d_backward_naive",
    "batchnorm_forward", "batchnorm_backward", "batchnorm_eval_affine",
    "batchnorm_forward_naive", "batchnorm_backward_naive",
]


def conv_output_size(size, kernel_size, stride=1, padding=0):
    out = (size + 2 * padding - kernel_size) // stride + 1
    if out < 1:
        raise ValueError(f"a {kernel_size}x{kernel_size} kernel with padding "
                         f"{padding} does not fit an input of size {size}")
    return out


def _nhwc(x):
    """An (N, C, H, W) array as an (N, H, W, C) one: free if channels-last."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


# Per-channel work on an (M, C) matrix with few channels (C = 16) is slow in
# NumPy when written directly: a broadcast like ``rows - mean`` runs an
# inner loop only C elements long. Viewing the same memory as wide rows of
# r pixels, (M/r, r*C), and tiling the per-channel vector r times, gives
# loops hundreds of elements long: 4-10x faster, same numbers.
def _widen(rows):
    """``rows`` (M, C) as (M/r, r*C), with r the largest of 1, 2, 4, ...
    that divides M while r*C stays at most 512."""
    m, c = rows.shape
    r = 1
    while m % (2 * r) == 0 and 2 * r * c <= 512:
        r *= 2
    return rows.reshape(m // r, r * c), r


def _colsum(wide, r):
    """Per-channel sums of a widened matrix: column sums, then folding the
    r pixel groups together.

    On the wide view, ``sum(axis=0)`` adds whole 512-long rows at a time,
    as fast as a matrix-vector product with ones, and it stays on this
    thread: a BLAS call this small wakes BLAS's second thread, and on a
    busy machine waiting for it cost milliseconds.
    """
    return wide.sum(axis=0).reshape(r, -1).sum(axis=0)


def _coldot(a, b, r):
    """Per-channel sums of ``a * b`` (both widened the same way). einsum
    multiplies and adds in one pass, without an (M, C) temporary."""
    return np.einsum("ij,ij->j", a, b).reshape(r, -1).sum(axis=0)


# ---------------------------------------------------------------------------
# im2col / col2im
# ---------------------------------------------------------------------------
def _windows(xp, kh, kw, stride, out_h, out_w):
    """The kh*kw strided views of a padded NHWC input, one per kernel offset.

    ``xp[:, i:i + stride*out_h:stride, j:j + stride*out_w:stride, :]`` holds,
    for every output position, the input pixel under kernel cell (i, j).
    The loops run over the kernel's cells (25 for 5x5), never over output
    positions.
    """
    for i in range(kh):
        for j in range(kw):
            yield i, j, xp[:, i:i + stride * out_h:stride,
                           j:j + stride * out_w:stride, :]


def im2col(x, kernel_size, stride=1, padding=0):
    """Unfold every kh x kw patch of ``x`` (N, C, H, W) into a row.

    Returns ``cols`` of shape (N*OH*OW, kh*kw*C): row ``(n, oh, ow)`` is the
    patch under the kernel at that output position, flattened in
    (kernel row, kernel column, channel) order. A convolution is then one
    matrix product, ``cols @ W.reshape(...)``.
    """
    n, c, h, w = x.shape
    k = kernel_size
    oh = conv_output_size(h, k, stride, padding)
    ow = conv_output_size(w, k, stride, padding)
    xp = _nhwc(x)
    if padding:
        xp = np.pad(xp, ((0, 0), (padding, padding), (padding, padding),
                         (0, 0)))
    # A strided view, no copy: patches[n, i, j, c, p, q] = xp[n, i+p, j+q, c]
    patches = sliding_window_view(xp, (k, k), axis=(1, 2))
    patches = patches[:, ::stride, ::stride]           # (N, OH, OW, C, k, k)
    # One copy makes it a matrix. Its memory order is chosen for speed:
    # with many channels, each patch is a contiguous row (N, OH, OW, k, k, C);
    # with one or two channels, copying whole planes (k, k, C, N, OH, OW) is
    # about 4x faster. The matrix product reads either order.
    if c >= 4:
        cols = np.ascontiguousarray(patches.transpose(0, 1, 2, 4, 5, 3))
    else:
        planes = np.ascontiguousarray(patches.transpose(4, 5, 3, 0, 1, 2))
        cols = planes.transpose(3, 4, 5, 0, 1, 2)
    return cols.reshape(n * oh * ow, k * k * c)


def col2im(dcols, x_shape, kernel_size, stride=1, padding=0):
    """The adjoint of im2col: add each row's values back onto the input.

    ``dcols`` is (kh*kw, N*OH*OW, C): one contiguous slab per kernel cell,
    so each of the kh*kw adds reads contiguous memory. Returns the
    (N, C, H, W) gradient, channels-last in memory. No ``np.add.at``, no loop
    over output positions.
    """
    n, c, h, w = x_shape
    k = kernel_size
    oh = conv_output_size(h, k, stride, padding)
    ow = conv_output_size(w, k, stride, padding)
    dxp = np.zeros((n, h + 2 * padding, w + 2 * padding, c), dcols.dtype)
    for i, j, window in _windows(dxp, k, k, stride, oh, ow):
        window += dcols[i * k + j].reshape(n, oh, ow, c)
    if padding:
        dxp = dxp[:, padding:-padding, padding:-padding, :]
    return dxp.transpose(0, 3, 1, 2)


# ---------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------
def conv2d_forward(x, w, b, stride=1, padding=0):
    """Convolution (cross-correlation) of x (N, C, H, W) with w (F, C, kh, kw).

    out[n, f, i, j] = b[f] + sum_{c, p, q} w[f, c, p, q] *
                      xpad[n, c, i*stride + p, j*stride + q]
    computed as one matrix product of im2col's patches with the weights.
    """
    n, c, h, wd = x.shape
    f, _, k, _ = w.shape
    oh = conv_output_size(h, k, stride, padding)
    ow = conv_output_size(wd, k, stride, padding)
    cols = im2col(x, k, stride, padding)               # (N*OH*OW, k*k*C)
    w_mat = w.transpose(2, 3, 1, 0).reshape(-1, f)     # (k*k*C, F)
    out = cols @ w_mat                                 # (N*OH*OW, F)
    if b is not None:
        wide, r = _widen(out)
        wide += np.tile(b, r)
    cache = (x.shape, cols, w, stride, padding, b is not None)
    return out.reshape(n, oh, ow, f).transpose(0, 3, 1, 2), cache


def conv2d_backward(dout, cache, input_grad=True):
    """Gradients (dx, dw, db) of a convolution; dx is None if not wanted."""
    x_shape, cols, w, stride, padding, has_bias = cache
    f, c, k, _ = w.shape
    d = _nhwc(dout).reshape(-1, f)                     # (N*OH*OW, F)
    dw = (cols.T @ d).reshape(k, k, c, f).transpose(3, 2, 0, 1)
    db = _colsum(*_widen(d)) if has_bias else None
    dx = None
    if input_grad:
        # one batched product gives a contiguous (N*OH*OW, C) slab per
        # kernel cell, ready for col2im's adds
        w_cells = w.transpose(2, 3, 0, 1).reshape(k * k, f, c)
        dcols = np.matmul(d, w_cells)                  # (k*k, N*OH*OW, C)
        dx = col2im(dcols, x_shape, k, stride, padding)
    return dx, np.ascontiguousarray(dw), db


def conv2d_forward_naive(x, w, b, stride=1, padding=0):
    """The definition, with a loop over every output value. Slow; a reference."""
    n, c, h, wd = x.shape
    f, _, k, _ = w.shape
    oh = conv_output_size(h, k, stride, padding)
    ow = conv_output_size(wd, k, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = np.zeros((n, f, oh, ow), dtype=x.dtype)
    for i in range(n):
        for o in range(f):
            for r in range(oh):
                for s in range(ow):
                    patch = xp[i, :, r * stride:r * stride + k,
                               s * stride:s * stride + k]
                    out[i, o, r, s] = np.sum(patch * w[o])
            if b is not None:
                out[i, o] += b[o]
    return out, (x, w, stride, padding)


def conv2d_backward_naive(dout, cache):
    """Each output value sends its gradient back to the patch it came from."""
    x, w, stride, padding = cache
    n, f, oh, ow = dout.shape
    k = w.shape[2]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for i in range(n):
        for o in range(f):
            for r in range(oh):
                for s in range(ow):
                    rows = slice(r * stride, r * stride + k)
                    cols = slice(s * stride, s * stride + k)
                    dw[o] += dout[i, o, r, s] * xp[i, :, rows, cols]
                    dxp[i, :, rows, cols] += dout[i, o, r, s] * w[o]
    db = dout.sum(axis=(0, 2, 3))
    h, wd = x.shape[2:]
    dx = dxp[:, :, padding:padding + h, padding:padding + wd]
    return dx, dw, db


# ---------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------
def maxpool2d_forward(x, kernel_size, stride=None):
    """Max over each k x k window: the maximum of k*k strided slices.

    When the windows tile the input (stride k, sizes divisible by k), the
    max runs in two passes instead: over the k image rows of each window,
    whose pixels are contiguous (W*C values), then over the k columns.
    Same numbers, longer inner loops: about 1.5x faster on the CNN's first
    pooling layer.
    """
    stride = stride or kernel_size
    k = kernel_size
    n, c, h, w = x.shape
    oh = conv_output_size(h, k, stride)
    ow = conv_output_size(w, k, stride)
    xh = _nhwc(x)
    if stride == k and h == k * oh and w == k * ow:
        rows = xh.reshape(n, oh, k, w * c)
        out = _max_of(rows[:, :, i] for i in range(k))
        cols = out.reshape(n, oh, ow, k, c)
        out = _max_of(cols[..., j, :] for j in range(k))
    else:
        out = _max_of(window for *_, window in
                      _windows(xh, k, k, stride, oh, ow))
    cache = (xh, out, k, stride)
    return out.transpose(0, 3, 1, 2), cache


def _max_of(arrays):
    """The element-wise maximum of equally shaped arrays, in a new array."""
    out = None
    for a in arrays:
        out = a.copy() if out is None else np.maximum(out, a, out=out)
    return out


def maxpool2d_backward(dout, cache):
    """Route each gradient to the first position that held the window's max."""
    xh, out, k, stride = cache
    n, oh, ow, c = out.shape
    d = _nhwc(dout)
    tiles = stride == k and xh.shape[1] == k * oh and xh.shape[2] == k * ow
    # windows that tile the input cover every pixel once: no zeroing needed
    dx = np.empty_like(xh) if tiles else np.zeros_like(xh)
    free = np.ones(out.shape, dtype=bool)   # windows whose max is not routed
    hit = np.empty(out.shape, dtype=bool)
    for i, j, window in _windows(xh, k, k, stride, oh, ow):
        np.equal(window, out, out=hit)
        hit &= free             # ties: only the first maximum gets it
        free ^= hit
        target = dx[:, i:i + stride * oh:stride, j:j + stride * ow:stride, :]
        if tiles:
            np.multiply(d, hit, out=target)
        else:
            target += d * hit
    return dx.transpose(0, 3, 1, 2)


def maxpool2d_forward_naive(x, kernel_size, stride=None):
    stride = stride or kernel_size
    n, c, h, w = x.shape
    oh = conv_output_size(h, kernel_size, stride)
    ow = conv_output_size(w, kernel_size, stride)
    out = np.zeros((n, c, oh, ow), dtype=x.dtype)
    for i in range(n):
        for ch in range(c):
            for r in range(oh):
                for s in range(ow):
                    out[i, ch, r, s] = x[i, ch, r * stride:r * stride + kernel_size,
                                         s * stride:s * stride + kernel_size].max()
    return out, (x, kernel_size, stride)


def maxpool2d_backward_naive(dout, cache):
    x, k, stride = cache
    dx = np.zeros_like(x)
    n, c, oh, ow = dout.shape
    for i in range(n):
        for ch in range(c):
            for r in range(oh):
                for s in range(ow):
                    window = x[i, ch, r * stride:r * stride + k,
                               s * stride:s * stride + k]
                    p, q = np.unravel_index(np.argmax(window), window.shape)
                    dx[i, ch, r * stride + p, s * stride + q] += dout[i, ch, r, s]
    return dx


# ---------------------------------------------------------------------------
# Batch normalisation
# ---------------------------------------------------------------------------
def _as_rows(x):
    """(N, C) stays; (N, C, H, W) becomes the (N*H*W, C) matrix of its pixels."""
    if x.ndim == 2:
        return x
    return _nhwc(x).reshape(-1, x.shape[1])


def _like(rows, x):
    """Inverse of _as_rows, giving an (N, C, H, W) view when x is 4-D."""
    if x.ndim == 2:
        return rows
    n, c, h, w = x.shape
    return rows.reshape(n, h, w, c).transpose(0, 3, 1, 2)


def batchnorm_forward(x, gamma, beta, running_mean, running_var,
                      momentum=0.1, eps=1e-5, training=True):
    """Batch normalisation over N (and H, W for images), per channel.

    Training: normalise with the batch's mean and (biased) variance, and
    update the running statistics in place with PyTorch's convention,
    ``running = (1 - momentum) * running + momentum * batch`` (unbiased
    variance). Evaluation: use the running statistics.

    Sums over the rows run on the widened (M/r, r*C) view (see ``_widen``),
    and normalise/scale/shift is fused into one multiply-add per element.
    """
    rows = _as_rows(x)
    m, c = rows.shape
    wide, r = _widen(rows)
    if not training:
        scale, shift = batchnorm_eval_affine(gamma, beta, running_mean,
                                             running_var, eps)
        out = wide * np.tile(scale, r)
        out += np.tile(shift, r)
        return _like(out.reshape(m, c), x), None
    mean = _colsum(wide, r) / m
    xc = wide - np.tile(mean, r)
    var = _coldot(xc, xc, r) / m
    inv_std = 1.0 / np.sqrt(var + eps)
    out = xc * np.tile(gamma * inv_std, r)
    out += np.tile(beta, r)
    running_mean *= 1 - momentum
    running_mean += momentum * mean
    running_var *= 1 - momentum
    running_var += momentum * var * (m / max(m - 1, 1))
    cache = (x.shape, xc, r, inv_std, gamma)
    return _like(out.reshape(m, c), x), cache


def batchnorm_eval_affine(gamma, beta, running_mean, running_var, eps=1e-5):
    """BatchNorm in evaluation mode as ``x * scale + shift`` per channel:
    ``gamma * (x - mean) / sqrt(var + eps) + beta`` with the running
    statistics, whose two terms can be computed once."""
    scale = gamma / np.sqrt(running_var + eps)
    return scale, beta - running_mean * scale


def batchnorm_backward(dout, cache):
    """Gradients (dx, dgamma, dbeta) of batch normalisation in training mode.

    With xhat = (x - mean) * inv_std and y = gamma * xhat + beta:
      dbeta  = sum(dy)
      dgamma = sum(dy * xhat)
      dx     = gamma * inv_std * (dy - dbeta/M - xhat * dgamma/M)
    """
    if cache is None:
        raise RuntimeError("batchnorm_backward needs a forward pass in "
                           "training mode; call model.train() first")
    shape, xc, r, inv_std, gamma = cache
    rows = _as_rows(dout)
    m, c = rows.shape
    d = rows.reshape(xc.shape)
    dbeta = _colsum(d, r)
    dgamma = _coldot(d, xc, r) * inv_std
    a = gamma * inv_std
    dx = d * np.tile(a, r)
    dx += xc * np.tile(-a * inv_std * dgamma / m, r)
    dx += np.tile(-a * dbeta / m, r)
    if len(shape) == 4:
        n, c, h, w = shape
        return dx.reshape(n, h, w, c).transpose(0, 3, 1, 2), dgamma, dbeta
    return dx.reshape(m, c), dgamma, dbeta


def batchnorm_forward_naive(x, gamma, beta, eps=1e-5):
    """Training-mode batch norm, written the way the paper writes it."""
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = (1, -1) if x.ndim == 2 else (1, -1, 1, 1)
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    xhat = (x - mean) / np.sqrt(var + eps)
    out = gamma.reshape(shape) * xhat + beta.reshape(shape)
    return out, (xhat, var, gamma.reshape(shape), eps, axes)


def batchnorm_backward_naive(dout, cache):
    """Backward by the chain rule, one intermediate at a time."""
    xhat, var, gamma, eps, axes = cache
    m = dout.size // dout.shape[1]
    dbeta = dout.sum(axis=axes)
    dgamma = (dout * xhat).sum(axis=axes)
    dxhat = dout * gamma
    inv_std = 1.0 / np.sqrt(var + eps)
    dx = inv_std / m * (m * dxhat - dxhat.sum(axis=axes, keepdims=True)
                        - xhat * (dxhat * xhat).sum(axis=axes, keepdims=True))
    return dx, dgamma, dbeta
