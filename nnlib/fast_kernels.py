"""Fast kernels: the numbers of ``nnlib.kernels``, computed with speed tricks.

``nnlib.kernels`` is the chapter's code; this module is what the layers
call. Each trick is a named strategy below, with a docstring saying what it
computes, and a test (``tests/test_fast_kernels.py``) against the naive
loop references. The strategies:

- **Channels last.** 4-D activations are (N, C, H, W) views of (N, H, W, C)
  memory. A convolution is then one matrix product whose rows are already
  in that layout, and BatchNorm's per-channel sums run down the columns of
  an (N*H*W, C) matrix, with no transposed copies between layers.
- **im2col by kernel rows / by planes** (``im2col_rows``,
  ``im2col_planes``): two memory orders for the patch matrix, chosen by the
  number of input channels.
- **col2im by slabs** (``col2im_slabs``): the input gradient of a
  convolution from one contiguous (pixels, channels) slab per kernel cell.
- **The input gradient by image rows** (``input_grad_by_rows``): for small
  images with many channels, one product with banded weights and k adds of
  whole image rows, in place of k*k small products and adds.
- **Widened rows** (``widen``): per-channel work on a matrix with few
  columns, done on a view with long rows.
- **Two-pass pooling** (``maxpool2d_forward``): when the windows tile the
  input, the maximum over the window's rows first, then over its columns;
  and the mask of the maxima kept for the backward pass, computed while
  the input is still in the cache (the cache names the strategy used).
- **Pooling in chunks** (``_pool_chunks``): max pooling, forward and
  backward, a few images at a time, so that its passes and temporaries
  stay in the core's cache.
- **BatchNorm and the pool folded into the first convolution**
  (``conv_batchnorm_forward``): BatchNorm's batch statistics of a
  convolution's output computed by matrix products with the patch matrix;
  the patches laid out by pooling window, so that the max pool compares
  whole blocks (``max_of_blocks``) and only the maxima are normalised.
  The largest activation of the network is written once and never
  passed over by BatchNorm. For a convolution that passes no gradient
  back (the first layer).
- **Chunks in cache** (``_chunks``, ``_pool_chunks``, ``_row_slices``):
  the passes that follow one another over the same values (col2im's adds,
  pooling's comparisons, BatchNorm's centring and scaling) run a few
  images, or a few hundred rows, at a time, so that the later passes find
  the values still in the core's cache. The chunk sizes are module
  constants; the tests shrink them to exercise several chunks.

Every function is a plain function of arrays, and ``fit`` calls them on
the whole batch, with BLAS on its threads for the matrix products. Splitting
the element-wise work between threads was measured slower on two cores
(the Speed page).

The matrices these kernels build use (kernel row, kernel column, channel)
order for a patch, not the chapter's (channel, kernel row, kernel column):
with channels last in memory, a patch row of a 5x5 kernel is then 5
contiguous runs of 5*C values, copied in 5 long moves. The weights are
reordered to match (``w.transpose(0, 2, 3, 1)``); the products are the same.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .kernels import (batchnorm_eval_affine, conv_output_size,
                      update_running_stats)
from .layout import as_rows, channels_last, flat, from_rows

__all__ = [
    "widen", "channel_sums", "channel_dots",
    "add_per_channel", "affine_per_channel",
    "im2col_rows", "im2col_planes", "col2im_slabs",
    "input_grad_strategy", "input_grad_by_slabs", "input_grad_by_rows",
    "band_weights",
    "conv2d_forward", "conv2d_backward",
    "linear_forward", "linear_backward",
    "conv_batchnorm_forward", "conv_batchnorm_backward",
    "im2col_planes_by_window", "max_of_blocks",
    "maxpool2d_forward", "maxpool2d_backward",
    "relu_forward", "relu_backward",
    "batchnorm_forward", "batchnorm_backward",
]


# ---------------------------------------------------------------------------
# Strategy: widened rows (per-channel work on few columns)
# ---------------------------------------------------------------------------
# A broadcast like ``rows - mean`` on an (M, 16) matrix runs NumPy's inner
# loop 16 elements at a time. Viewing the same memory as (M/r, r*16) and
# tiling the per-channel vector r times gives loops hundreds long: same
# numbers, far less loop overhead.
WIDE = 512     # NOTE: longest row wanted; longer gained nothing measured


def widen(rows):
    """``rows`` (M, C) viewed as (M/r, r*C), with r the largest power of 2
    dividing M such that r*C <= 512. Returns (view, r); a per-channel
    vector v matches the view as ``tiled(v, r)``."""
    m, c = rows.shape
    r = 1
    while m % (2 * r) == 0 and 2 * r * c <= WIDE:
        r *= 2
    return rows.reshape(m // r, r * c), r


def tiled(v, r):
    """The per-channel vector v repeated r times: ``np.tile(v, r)``,
    with less overhead."""
    return v[None].repeat(r, axis=0).reshape(-1)


def channel_sums(wide, r):
    """Per-channel sums of a widened matrix: its column sums, with the r
    groups of channels folded together. (Summing in NumPy, not as a BLAS
    product with ones: a product this small wakes BLAS's other threads.)"""
    return wide.sum(axis=0).reshape(r, -1).sum(axis=0)


def channel_dots(a, b, r):
    """Per-channel sums of ``a * b`` (both widened alike), in one pass."""
    return np.einsum("ij,ij->j", a, b).reshape(r, -1).sum(axis=0)


def add_per_channel(rows, v):
    """rows += v, per column of an (M, C) matrix (in place)."""
    wide, r = widen(rows)
    wide += tiled(v, r)
    return rows


def affine_per_channel(rows, scale, shift, out=None):
    """rows * scale + shift per column of an (M, C) matrix, in two passes
    (into ``out``; in place if ``out is rows``)."""
    wide, r = widen(rows)
    out = np.empty_like(rows) if out is None else out
    wide_out = out.reshape(wide.shape)
    np.multiply(wide, tiled(scale, r), out=wide_out)
    wide_out += tiled(shift, r)
    return out


# ---------------------------------------------------------------------------
# Strategy: im2col in two memory orders, col2im by slabs
# ---------------------------------------------------------------------------
def im2col_rows(xh, k, stride, out_h, out_w, out):
    """Patches of the padded NHWC input ``xh`` as rows of
    ``out`` (N*H'*W', k*k*C) in (kernel row, kernel column, channel) order.

    With channels last, the k pixels of one kernel row of a patch are k*C
    contiguous values of the input: the copy moves whole kernel rows
    (80 values for 5x5 on 16 channels), not single pixels.
    """
    n, h, w, c = xh.shape
    s = xh.strides
    # view[n, i, j, p, :] = the k*C values xh[n, i*stride + p, j*stride:+k, :]
    view = as_strided(xh, (n, out_h, out_w, k, k * c),
                      (s[0], s[1] * stride, s[2] * stride, s[1], s[3]),
                      writeable=False)
    np.copyto(out.reshape(n, out_h, out_w, k, k * c), view)


def im2col_planes(xh, k, stride, out_h, out_w, out):
    """The same patch matrix for few channels, stored transposed: ``out``
    is (k*k*C, N*H'*W'), one plane per (kernel row, kernel column,
    channel), and ``out.T`` is im2col's matrix. With one channel a patch
    row is only k values long, while a plane is one strided slice of the
    input: k*k copies of whole images."""
    n, h, w, c = xh.shape
    planes = out.reshape(k, k, c, n, out_h, out_w)
    for p in range(k):
        for q in range(k):
            cell = xh[:, p:p + stride * out_h:stride,
                      q:q + stride * out_w:stride, :]
            planes[p, q] = cell.transpose(3, 0, 1, 2)


def col2im_slabs(slabs, dxh, k, stride, out_h, out_w):
    """Add the gradients of im2col's copies back onto the padded NHWC
    gradient ``dxh`` (in place). ``slabs`` is (k*k, N*H'*W', C): one
    contiguous slab per kernel cell, as one batched matrix product gives
    them, so each of the k*k adds reads contiguous memory."""
    n, c = len(dxh), dxh.shape[3]
    for p in range(k):
        for q in range(k):
            window = dxh[:, p:p + stride * out_h:stride,
                         q:q + stride * out_w:stride, :]
            window += slabs[p * k + q].reshape(n, out_h, out_w, c)


# ---------------------------------------------------------------------------
# Convolution and linear layers
# ---------------------------------------------------------------------------
CHUNK_BYTES = 1 << 21     # NOTE: 2 MB of slabs, near a core's L2 cache


def _chunks(n, image_bytes):
    """n images as (lo, hi) chunks whose patch gradients (``image_bytes``
    per image) stay near CHUNK_BYTES: a chunk's slabs are still in the
    cache when col2im adds them back."""
    count = max(1, -(-n * image_bytes // CHUNK_BYTES))
    edges = [n * i // count for i in range(count + 1)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _padded_input(x, k, stride, padding):
    """x (N, C, H, W) as its padded NHWC array, and the output's height and
    width for a k x k kernel."""
    out_h = conv_output_size(x.shape[2], k, stride, padding)
    out_w = conv_output_size(x.shape[3], k, stride, padding)
    xh = channels_last(x)
    if padding:
        p = padding
        xh = np.pad(xh, ((0, 0), (p, p), (p, p), (0, 0)))
    return xh, out_h, out_w


def conv2d_forward(x, w, b, stride=1, padding=0):
    """``kernels.conv2d_forward``'s result, channels-last: im2col (by rows
    for 4 or more input channels, by planes for fewer), one matrix
    product, the bias added on widened rows."""
    n, c, h, wd = x.shape
    f, _, k, _ = w.shape
    xh, out_h, out_w = _padded_input(x, k, stride, padding)
    w_mat = w.transpose(2, 3, 1, 0).reshape(k * k * c, f)
    if c >= 4:
        cols = np.empty((n * out_h * out_w, k * k * c), x.dtype)
        im2col_rows(xh, k, stride, out_h, out_w, cols)
    else:
        planes = np.empty((k * k * c, n * out_h * out_w), x.dtype)
        im2col_planes(xh, k, stride, out_h, out_w, planes)
        cols = planes.T
    out = cols @ w_mat
    if b is not None:
        add_per_channel(out, b)
    cache = (x.shape, xh.shape, cols, w, stride, padding, b is not None)
    return from_rows(out, (n, f, out_h, out_w)), cache


def conv2d_backward(dout, cache, input_grad=True):
    """Gradients (dx, dw, db) of ``conv2d_forward``; dx is None when
    ``input_grad`` is False, db when there is no bias. dx comes by the
    strategy ``input_grad_strategy`` names: by image rows
    (``input_grad_by_rows``) for 4 or more channels on images at most
    BAND_WIDTH kernels wide, else from ``col2im_slabs``, a chunk of images
    at a time (``input_grad_by_slabs``)."""
    x_shape, padded, cols, w, stride, padding, has_bias = cache
    n, c, h, wd = x_shape
    f, _, k, _ = w.shape
    d = channels_last(dout)
    out_h, out_w = d.shape[1:3]
    d = d.reshape(-1, f)
    dw = cols.T @ d
    dw = np.ascontiguousarray(dw.reshape(k, k, c, f).transpose(3, 2, 0, 1))
    db = channel_sums(*widen(d)) if has_bias else None
    if not input_grad:
        return None, dw, db
    if input_grad_strategy(w.shape, padded) == "rows":
        dxh = input_grad_by_rows(d, w, padded, stride, out_h, out_w)
    else:
        dxh = input_grad_by_slabs(d, w, padded, stride, out_h, out_w)
    if padding:
        p = padding
        dxh = dxh[:, p:-p, p:-p, :]
    return dxh.transpose(0, 3, 1, 2), dw, db


def input_grad_strategy(w_shape, padded):
    """How ``conv2d_backward`` computes the input gradient for weights of
    ``w_shape`` on a padded input of shape ``padded`` (N, H, W, C):
    ``"rows"`` (banded weights) or ``"slabs"`` (col2im)."""
    f, c, k, _ = w_shape
    return "rows" if c >= 4 and padded[2] <= BAND_WIDTH * k else "slabs"


def input_grad_by_slabs(d, w, padded, stride, out_h, out_w):
    """The padded NHWC input gradient from the (pixels, F) output gradient
    d: one product per kernel cell into slabs, then ``col2im_slabs``, a
    chunk of images at a time (``_chunks``)."""
    f, c, k, _ = w.shape
    n, pix = padded[0], out_h * out_w
    w_cells = w.transpose(2, 3, 0, 1).reshape(k * k, f, c)
    dxh = np.empty(padded, d.dtype)
    for lo, hi in _chunks(n, pix * k * k * c * d.itemsize):
        slabs = np.empty((k * k, (hi - lo) * pix, c), d.dtype)
        for cell in range(k * k):
            # One 2-D product per kernel cell, not a stacked np.matmul,
            # which holds the GIL while it runs (other threads wait).
            np.dot(d[lo * pix:hi * pix], w_cells[cell], out=slabs[cell])
        part = dxh[lo:hi]
        part[...] = 0
        col2im_slabs(slabs, part, k, stride, out_h, out_w)
    return dxh


# ---------------------------------------------------------------------------
# Strategy: the input gradient by image rows (banded weights)
# ---------------------------------------------------------------------------
# For small images with many channels. Output row (n, i) of the gradient,
# all W'*F values of it, times a banded matrix gives the gradient of the k
# whole input rows it was computed from: one large product, and k adds of
# whole image rows, instead of k*k small products and k*k adds of slabs.
# The band multiplies zeros (W/k times the work of the slabs' products),
# which pays only while the image is a few kernels wide.
BAND_WIDTH = 6    # NOTE: images at most 6 kernels wide (padding included)


def band_weights(w, width, stride, out_w):
    """The banded (k*W*C, W'*F) matrix B with
    B[(p, u, c), (j, f)] = w[f, c, p, u - stride*j] where 0 <= u -
    stride*j < k, else 0: the convolution maps the k input rows
    (p, u, c) read by output row i to its W'*F values (j, f) through B."""
    f, c, k, _ = w.shape
    band = np.zeros((k, width, c, out_w, f), w.dtype)
    cells = w.transpose(2, 3, 1, 0)                   # (p, q, c, f)
    for j in range(out_w):
        band[:, stride * j:stride * j + k, :, j, :] = cells
    return band.reshape(k * width * c, out_w * f)


def input_grad_by_rows(d, w, padded, stride, out_h, out_w):
    """The padded NHWC input gradient from the (pixels, F) output gradient
    d, by image rows: d as (N*H', W'*F) times the band's transpose gives,
    for each output row, the gradient of its k input rows, added back one
    kernel row at a time (whole image rows: long loops)."""
    f, c, k, _ = w.shape
    n, h, wp, _ = padded
    band = band_weights(w, wp, stride, out_w)
    t = (d.reshape(n * out_h, out_w * f) @ band.T).reshape(
        n, out_h, k, wp * c)
    dxh = np.zeros(padded, d.dtype)
    rows = dxh.reshape(n, h, wp * c)
    for p in range(k):
        rows[:, p:p + stride * out_h:stride] += t[:, :, p]
    return dxh


def linear_forward(x, w, b):
    """x @ w.T + b for x (N, in), w (out, in)."""
    out = x @ w.T
    if b is not None:
        out += b
    return out


def linear_backward(dout, x, w, input_grad=True, bias=True):
    """(dx, dw, db) of ``linear_forward``; dx is None without
    ``input_grad``, db without ``bias``."""
    dw = dout.T @ x
    db = dout.sum(axis=0) if bias else None
    dx = dout @ w if input_grad else None
    return dx, dw, db


# ---------------------------------------------------------------------------
# Strategy: BatchNorm folded into the first convolution
# ---------------------------------------------------------------------------
def conv_batchnorm_forward(x, w, b, gamma, beta, running_mean, running_var,
                           momentum=0.1, eps=1e-5, stride=1, padding=0,
                           pool=None):
    """``batchnorm_forward`` (training mode) of ``conv2d_forward``'s output,
    with matrix products in place of BatchNorm's passes over that output,
    and, with ``pool=k``, the k x k max pool that follows.

    With P the patch matrix (M rows), one filter w and its bias b, the
    convolution's output is y = P w + b. With y0 = P w, the batch's

      mean = mean(y0) + b,   var = (w . P'y0) / M - mean(y0)^2,

    and BatchNorm's output is another product with the patches:

      z = a (y - mean) + beta = P (a w) + (beta - a mean(y0)),  a = gamma/std.

    P is built as planes (``im2col_planes``) with one more plane of ones,
    P1 = [P, 1], so that P1'y0 holds P'y0 and the sums of y0, and P1 times
    [a w; shift] adds the shift inside the product. Three products with the
    patches, and no pass over an (M, C) array. P'y0 is kept for the
    backward pass. The small (k*k*C, C) matrices are worked in float64.

    With ``pool``, when the pool's windows tile the output (a stride of 1,
    sizes divisible by k), the patches are built by window
    (``im2col_planes_by_window``): the rows of y0 then come as k*k blocks,
    one per cell of the windows, and the pool is the maximum of the
    blocks, with the mask of each window's first maximum
    (``max_of_blocks``). As z = a y0 + shift rises with y0 where a > 0 and
    falls where a < 0, the maxima of z are those of sign(a) y0, and only
    they are normalised: a quarter of the values, and no third product.
    (The maxima are exact, as rounding never reverses an order; where it
    makes two values of z equal that differ in y0, the gradient goes to
    the larger, not the first: a difference of float32's last bit.)
    Otherwise z is computed whole, and the pool runs as
    ``maxpool2d_forward`` on it.

    Returns (output, cache) and updates the running statistics as
    ``batchnorm_forward`` does.
    """
    n, c, h, wd = x.shape
    f, _, k, _ = w.shape
    xh, out_h, out_w = _padded_input(x, k, stride, padding)
    by_window = pool is not None and stride == 1 \
        and out_h % pool == 0 and out_w % pool == 0
    kk = k * k * c
    planes = np.empty((kk + 1, n * out_h * out_w), x.dtype)
    if by_window:
        im2col_planes_by_window(xh, k, out_h, out_w, pool, planes[:kk])
    else:
        im2col_planes(xh, k, stride, out_h, out_w, planes[:kk])
    planes[kk] = 1
    m = planes.shape[1]
    w_mat = w.transpose(2, 3, 1, 0).reshape(kk, f)
    y0 = planes[:kk].T @ w_mat                          # P w
    py1 = (planes @ y0).astype(np.float64)               # P1'y0
    py, mean0 = py1[:kk], py1[kk] / m
    w64 = w_mat.astype(np.float64)
    var = np.maximum((w64 * py).sum(axis=0) / m - mean0 ** 2, 0)
    inv_std = 1 / np.sqrt(var + eps)
    a = gamma * inv_std
    shift = beta - a * mean0
    mean = mean0 + (0 if b is None else b)
    update_running_stats(running_mean, running_var, mean.astype(x.dtype),
                         var.astype(x.dtype), m, momentum)
    # P's column sums: window sums of the batch's summed (padded) image
    total = xh.sum(axis=0, dtype=np.float64)
    sums = np.array([total[i:i + stride * out_h:stride,
                           j:j + stride * out_w:stride].sum(axis=(0, 1))
                     for i in range(k) for j in range(k)]).reshape(kk)
    if by_window:
        # z = a y0 + shift grows with y0 where a > 0 and falls where a < 0:
        # the window maxima of z are those of sign(a) y0, and z is only
        # computed for them.
        sign = np.sign(a).astype(x.dtype)
        if np.any(sign != 1):
            wide, r = widen(y0)
            wide *= tiled(sign, r)
        top, mask = max_of_blocks(y0.reshape(n, pool * pool, -1))
        rows = top.reshape(-1, f)
        affine_per_channel(rows, np.abs(a).astype(x.dtype),
                           shift.astype(x.dtype), out=rows)
        out = from_rows(rows, (n, f, out_h // pool, out_w // pool))
        pooled = ("blocks", mask)
    else:
        w1 = np.empty((kk + 1, f))                     # [a w; shift]
        w1[:kk] = w64 * a
        w1[kk] = shift
        z = np.matmul(planes.T, w1.astype(x.dtype), out=y0)   # y0 is spent
        out = from_rows(z, (n, f, out_h, out_w))
        pooled = None
        if pool is not None:
            out, pool_cache = maxpool2d_forward(out, pool)
            pooled = ("maxpool", pool_cache)
    cache = (planes, w64, py, sums, mean0, inv_std, gamma, w.shape,
             b is not None, pooled)
    return out, cache


def conv_batchnorm_backward(dout, cache):
    """Gradients (dw, db, dgamma, dbeta) of ``conv_batchnorm_forward``, from
    one matrix product, H1 = P1'dz, whose last row is dbeta:

      dgamma = inv_std * (sum over k of H * w  -  dbeta * mean(y0))
      dw     = H a + (P'y0 - s mean(y0)) k1 + s k2
      db     = a dbeta + M k2   (zero, up to rounding: BatchNorm removes b)

    with s the column sums of P, k1 = -a inv_std dgamma / M and
    k2 = -a dbeta / M, the coefficients of ``batchnorm_backward``:
    dy = a dz + k1 (y - mean) + k2 is the convolution's output gradient,
    and P'(y - mean) = P'y0 - s mean(y0). With a pool, dz is first routed
    through it (by blocks: the pooled gradient times the mask of first
    maxima, one multiply). The gradient with respect to the images is not
    computed (the first layer has none to pass on).
    """
    (planes, w64, py, sums, mean0, inv_std, gamma, w_shape, has_bias,
     pooled) = cache
    f, c, k, _ = w_shape
    kk, m = len(planes) - 1, planes.shape[1]
    if pooled is None:
        dz = as_rows(dout)
    elif pooled[0] == "blocks":
        mask = pooled[1]
        g = channels_last(dout).reshape(len(mask), 1, -1)
        dz = np.multiply(mask, g).reshape(m, f)
    else:
        dz = as_rows(maxpool2d_backward(dout, pooled[1]))
    h1 = (planes @ dz).astype(np.float64)                # P1'dz
    h, dbeta = h1[:kk], h1[kk]
    dgamma = inv_std * ((h * w64).sum(axis=0) - dbeta * mean0)
    a = gamma * inv_std
    k1 = -a * inv_std * dgamma / m
    k2 = -a * dbeta / m
    dw_mat = h * a + (py - np.outer(sums, mean0)) * k1 + np.outer(sums, k2)
    dw = dw_mat.reshape(k, k, c, f).transpose(3, 2, 0, 1)
    dt = dz.dtype
    db = (a * dbeta + m * k2).astype(dt) if has_bias else None
    return (np.ascontiguousarray(dw, dt), db, dgamma.astype(dt),
            dbeta.astype(dt))


def im2col_planes_by_window(xh, k, out_h, out_w, pool, out):
    """``im2col_planes``'s planes for a stride-1 convolution whose output a
    pool x pool max pool tiles, with the output pixels in the order
    (image, row in the window, column in the window, window row, window
    column): the pixels of the windows then form pool*pool contiguous
    blocks per image, one per cell of the windows."""
    n, h, w, c = xh.shape
    oh, ow = out_h // pool, out_w // pool
    planes = out.reshape(k, k, c, n, pool, pool, oh, ow)
    for p in range(k):
        for q in range(k):
            cell = xh[:, p:p + out_h, q:q + out_w, :].reshape(
                n, oh, pool, ow, pool, c)
            planes[p, q] = cell.transpose(5, 0, 2, 4, 1, 3)


def max_of_blocks(z):
    """For z (N, B, L): the maximum over its B blocks, (N, L), and the mask
    (N, B, L) of the block holding each maximum first (in block order):
    with the blocks in the order of the cells of the pooling windows, the
    pixel that ``kernels.maxpool2d_backward`` gives the window's gradient.
    Every pass runs over whole blocks (long loops)."""
    top = _max_of((z[:, i] for i in range(z.shape[1])),
                  np.empty((len(z), z.shape[2]), z.dtype))
    mask = np.empty(z.shape, bool)
    np.equal(z[:, 0], top, out=mask[:, 0])
    seen = mask[:, 0].copy()                    # windows already routed
    last = z.shape[1] - 1
    for i in range(1, last + 1):
        hit = mask[:, i]
        np.equal(z[:, i], top, out=hit)
        np.greater(hit, seen, out=hit)          # a maximum, and the first
        if i < last:
            seen |= hit
    return top, mask


# ---------------------------------------------------------------------------
# Max pooling: two-pass when the windows tile the input
# ---------------------------------------------------------------------------
def _max_of(arrays, out):
    """The element-wise maximum of equally shaped arrays, into ``out``."""
    first = True
    for a in arrays:
        if first:
            np.copyto(out, a)
            first = False
        else:
            np.maximum(out, a, out=out)
    return out


POOL_CHUNK_BYTES = 1 << 19   # NOTE: 512 KB of input, with its temporaries in L2


def _pool_chunks(n, image_bytes):
    """n images as (lo, hi) chunks of about POOL_CHUNK_BYTES of input: the
    pooling passes and their temporaries then stay in the core's cache.
    Every value is computed as without chunks (maxima and routing are
    exact)."""
    step = max(1, POOL_CHUNK_BYTES // image_bytes)
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def _tiles(xh, k, stride, out_h, out_w):
    return stride == k and xh.shape[1] == k * out_h \
        and xh.shape[2] == k * out_w


def maxpool2d_forward(x, kernel_size, stride=None, keep_mask=True):
    """``kernels.maxpool2d_forward``'s result, channels-last, and a cache
    for ``maxpool2d_backward`` that names the strategy it used.

    When the windows tile the input (stride k, sizes divisible by k), the
    maximum is taken in two passes: over the k image rows of each window,
    whose pixels are contiguous (W*C values, long loops), then over its k
    columns. While a chunk of images is still in the cache, the mask of
    the pixels that equal their window's maximum is kept too (one byte a
    pixel; ``keep_mask=False`` skips it, for inference), so that the
    backward pass need not read the input again: strategy ``"mask"``.
    Otherwise, the maximum of the k*k strided slices, and the backward pass
    compares them with the output: strategy ``"cells"``.
    """
    k = kernel_size
    stride = stride or k
    n, c, h, w = x.shape
    out_h = conv_output_size(h, k, stride)
    out_w = conv_output_size(w, k, stride)
    xh = channels_last(x)
    out = np.empty((n, out_h, out_w, c), x.dtype)
    chunks = _pool_chunks(n, xh.strides[0])
    tiles = _tiles(xh, k, stride, out_h, out_w)
    mask = np.empty(xh.shape, bool) if tiles and keep_mask else None
    tied = []                    # chunks where some window's maximum is tied
    for lo, hi in chunks:
        part = xh[lo:hi]
        if tiles:
            rows = part.reshape(hi - lo, out_h, k, w * c)
            best_row = _max_of((rows[:, :, i] for i in range(k)),
                               np.empty((hi - lo, out_h, w * c), x.dtype))
            cols = best_row.reshape(hi - lo, out_h, out_w, k, c)
            _max_of((cols[..., j, :] for j in range(k)), out[lo:hi])
            if mask is not None and not _mask_of_maxima(
                    part, out[lo:hi], mask[lo:hi], k):
                tied.append((lo, hi))
        else:
            _max_of((part[:, p:p + stride * out_h:stride,
                          q:q + stride * out_w:stride, :]
                     for p in range(k) for q in range(k)), out[lo:hi])
    if tiles:
        cache = ("mask", mask, tied, chunks, k)
    else:
        cache = ("cells", xh, out, chunks, k, stride)
    return out.transpose(0, 3, 1, 2), cache


def _mask_of_maxima(xh, out, mask, k):
    """mask = (xh == each pixel's window maximum), for windows that tile xh,
    compared a whole image row at a time against the output repeated k
    times along the row (``np.repeat``). Returns False if some window holds
    its maximum more than once (or a NaN): the count of matches is then
    not the number of windows."""
    m, out_h, out_w, c = out.shape
    row = out_w * k * c                         # values in one image row
    up = np.repeat(out, k, axis=2).reshape(m, out_h, 1, row)
    hit = mask.reshape(m, out_h, k, row)
    np.equal(xh.reshape(m, out_h, k, row), up, out=hit)
    return np.count_nonzero(hit) == out.size


def maxpool2d_backward(dout, cache):
    """Route each window's gradient to the first pixel (in row-major
    order) holding its maximum, as ``kernels.maxpool2d_backward``, by the
    strategy the forward pass named in ``cache``."""
    d = channels_last(dout)
    if cache[0] == "mask":
        dx = _backward_through_mask(d, *cache[1:])
    else:
        dx = _backward_by_cells(d, *cache[1:])
    return dx.transpose(0, 3, 1, 2)


def _backward_through_mask(d, mask, tied, chunks, k):
    """Strategy ``"mask"`` (windows that tile the input): where every
    window of a chunk holds its maximum once, the gradient repeated k times
    along the rows times the forward pass's mask is the answer; a chunk
    with a tied maximum (a window of zeros after a ReLU) takes the exact
    route of ``_first_maxima``."""
    if mask is None:
        raise RuntimeError("this max pool ran with keep_mask=False; run "
                           "it with keep_mask=True to go backward")
    n, out_h, out_w, c = d.shape
    row = out_w * k * c                        # values in one image row
    dx = np.empty(mask.shape, d.dtype)         # the tiles cover every pixel
    for lo, hi in chunks:
        g, m = d[lo:hi], hi - lo
        if (lo, hi) in tied:
            for cell, hit in _first_maxima(lambda cell: mask[cell], g.shape,
                                           lo, hi, k, k):
                np.multiply(g, hit, out=dx[cell])
        else:
            up = np.repeat(g, k, axis=2).reshape(m, out_h, 1, row)
            np.multiply(mask[lo:hi].reshape(m, out_h, k, row), up,
                        out=dx[lo:hi].reshape(m, out_h, k, row))
    return dx


def _backward_by_cells(d, xh, out, chunks, k, stride):
    """Strategy ``"cells"`` (windows that overlap or leave pixels out):
    each cell of the windows compared with the output, and its gradient
    added where it holds its window's first maximum."""
    dx = np.zeros_like(xh)
    for lo, hi in chunks:
        g = d[lo:hi]
        for cell, hit in _first_maxima(lambda cell: xh[cell] == out[lo:hi],
                                       g.shape, lo, hi, k, stride):
            dx[cell] += g * hit
    return dx


def _first_maxima(is_max, shape, lo, hi, k, stride):
    """For images lo:hi, each cell (p, q) of the windows in row-major order
    as (its slice of the input, where it holds its window's first
    maximum), given ``is_max(slice)``: where it holds the maximum at all.
    Each window's gradient then goes to one pixel, even when its maximum
    is tied."""
    out_h, out_w = shape[1:3]
    free = np.ones(shape, dtype=bool)          # windows not yet routed
    hit = np.empty(shape, dtype=bool)
    for p in range(k):
        for q in range(k):
            cell = (slice(lo, hi), slice(p, p + stride * out_h, stride),
                    slice(q, q + stride * out_w, stride))
            np.logical_and(is_max(cell), free, out=hit)
            free ^= hit
            yield cell, hit


# ---------------------------------------------------------------------------
# ReLU
# ---------------------------------------------------------------------------
def relu_forward(x):
    """(max(x, 0), the mask x > 0), in x's memory layout: one comparison
    and one multiply over x's memory as a flat vector."""
    out, mask = np.empty_like(x), np.empty_like(x, dtype=bool)
    src, dst, m = flat(x), flat(out), flat(mask)
    if src is None or dst is None or m is None:
        src, dst, m = x, out, mask
    np.greater(src, 0, out=m)
    np.multiply(src, m, out=dst)
    return out, mask


def relu_backward(dout, mask):
    """dout * mask, over memory as a flat vector when the layouts match."""
    out = np.empty_like(mask, dtype=dout.dtype)
    src, dst, m = flat(dout), flat(out), flat(mask)
    if src is None or dst is None or m is None \
            or dout.strides != out.strides:
        return dout * mask
    np.multiply(src, m, out=dst)
    return out


# ---------------------------------------------------------------------------
# Batch normalisation, its passes slice by slice
# ---------------------------------------------------------------------------
BN_CHUNK_BYTES = 1 << 18   # NOTE: 256 KB; three such arrays fit in L2


def _row_slices(wide):
    """Slices of a widened matrix's rows, about BN_CHUNK_BYTES each: the
    several passes of BatchNorm over one slice find it still in the
    core's cache."""
    step = max(1, BN_CHUNK_BYTES // (wide.shape[1] * wide.itemsize))
    return [slice(i, i + step) for i in range(0, len(wide), step)]


def batchnorm_forward(x, gamma, beta, running_mean, running_var,
                      momentum=0.1, eps=1e-5, training=True):
    """``kernels.batchnorm_forward``'s result, on widened rows.

    The statistics are the whole batch's, as in PyTorch: the mean from the
    column sums, then the rows centred and their squares summed slice by
    slice (the centred slice is still in cache for its squares). The
    output, ``(x - mean) * a + beta`` with ``a = gamma / sqrt(var + eps)``,
    is one multiply and one add per value, slice by slice.
    """
    rows = as_rows(x)
    m, c = rows.shape
    out = np.empty_like(rows)
    if not training:
        scale, shift = batchnorm_eval_affine(gamma, beta, running_mean,
                                             running_var, eps)
        affine_per_channel(rows, scale, shift, out=out)
        return from_rows(out, x.shape), None
    wide, r = widen(rows)
    mean = channel_sums(wide, r) / m
    xc = np.empty_like(rows)
    centred = xc.reshape(wide.shape)
    minus_mean, m2 = -tiled(mean, r), 0
    for s in _row_slices(wide):
        np.add(wide[s], minus_mean, out=centred[s])
        m2 = m2 + channel_dots(centred[s], centred[s], r)
    var = m2 / m
    inv_std = 1 / np.sqrt(var + eps)
    a = gamma * inv_std
    target = out.reshape(wide.shape)
    scale, shift = tiled(a, r), tiled(beta, r)
    for s in _row_slices(wide):
        np.multiply(centred[s], scale, out=target[s])
        target[s] += shift
    update_running_stats(running_mean, running_var, mean, var, m, momentum)
    return from_rows(out, x.shape), (x.shape, xc, inv_std, gamma)


def batchnorm_backward(dout, cache):
    """``kernels.batchnorm_backward``'s result: with xc = x - mean,

      dbeta  = sum(dy),   dgamma = inv_std * sum(dy * xc)
      dx     = a * dy + k1 * xc + k2,
               k1 = -a * inv_std * dgamma / M,  k2 = -a * dbeta / M,

    each pass slice by slice.
    """
    if cache is None:
        raise RuntimeError("batchnorm_backward needs a forward pass in "
                           "training mode; call model.train() first")
    shape, xc, inv_std, gamma = cache
    d = as_rows(dout)
    m, c = xc.shape
    wide, r = widen(d)
    centred = xc.reshape(wide.shape)
    dbeta = dots = 0
    for s in _row_slices(wide):
        dbeta = dbeta + channel_sums(wide[s], r)
        dots = dots + channel_dots(wide[s], centred[s], r)
    dgamma = dots * inv_std
    a = gamma * inv_std
    k1 = -a * inv_std * dgamma / m
    k2 = -a * dbeta / m
    dx = np.empty(xc.shape, np.result_type(d, xc))
    target = dx.reshape(wide.shape)
    scale, k1_r, shift = tiled(a, r), tiled(k1, r), tiled(k2, r)
    slices = _row_slices(wide)
    scratch = np.empty_like(target[slices[0]])    # one slice, reused
    for s in slices:
        part = scratch[:len(target[s])]
        np.multiply(wide[s], scale, out=target[s])
        np.multiply(centred[s], k1_r, out=part)
        target[s] += part
        target[s] += shift
    return from_rows(dx, shape), dgamma, dbeta
