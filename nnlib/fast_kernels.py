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
- **Widened rows** (``widen``): per-channel work on a matrix with few
  columns, done on a view with long rows.
- **Two-pass pooling** (``maxpool2d_forward``): when the windows tile the
  input, the maximum over the window's rows first, then over its columns.
- **Pooling in chunks** (``_pool_chunks``): max pooling, forward and
  backward, a few images at a time, so that its passes and temporaries
  stay in the core's cache.
- **Batch split** (``BatchSplit``, opt-in): inside ``with
  BatchSplit(threads):``, each kernel gives every thread a part of the
  batch; NumPy releases the GIL in its array work, so the element-wise
  work runs on all cores, not only the matrix products. BatchNorm combines
  the parts' statistics before normalising (``batchnorm_forward``). ``fit``
  does not enter one: on two cores the handing over cost more than it
  saved (the Speed page).

The matrices these kernels build use (kernel row, kernel column, channel)
order for a patch, not the chapter's (channel, kernel row, kernel column):
with channels last in memory, a patch row of a 5x5 kernel is then 5
contiguous runs of 5*C values, copied in 5 long moves. The weights are
reordered to match (``w.transpose(0, 2, 3, 1)``); the products are the same.
"""
from __future__ import annotations

import queue
import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .kernels import as_rows, batchnorm_eval_affine, conv_output_size

__all__ = [
    "BatchSplit", "widen", "channel_sums", "channel_dots",
    "add_per_channel", "affine_per_channel",
    "im2col_rows", "im2col_planes", "col2im_slabs",
    "conv2d_forward", "conv2d_backward",
    "linear_forward", "linear_backward",
    "maxpool2d_forward", "maxpool2d_backward",
    "relu_forward", "relu_backward",
    "batchnorm_forward", "batchnorm_backward",
]


# ---------------------------------------------------------------------------
# Strategy: batch split (a part of each batch per thread)
# ---------------------------------------------------------------------------
_split = None          # the active BatchSplit, if any


class BatchSplit:
    """``with BatchSplit(threads):`` makes the kernels of this module split
    their work into ``threads`` parts (consecutive examples of the batch;
    for a linear layer, blocks of features), computed at once by the
    calling thread and ``threads - 1`` helper threads, with the BLAS
    library on one thread each (restored on exit). Only the thread
    that entered it splits its work; others (``predict``'s workers)
    compute whole batches.

    The parts' results are combined in a fixed order, so the numbers do
    not depend on which thread finishes first; they do depend on the
    number of parts, as BLAS's do on its thread count. ``threads=1`` (or a
    batch too small to split) computes everything on the calling thread.
    Inside another BatchSplit, one does nothing.
    """

    # NOTE: below this many values, waking a helper costs more than it saves
    MIN_SIZE = 65536

    def __init__(self, threads):
        self.threads = int(threads)
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self._tasks, self._done, self._helpers = [], queue.SimpleQueue(), []
        self._blas, self._saved = None, None

    def __enter__(self):
        global _split
        self.owner = threading.get_ident()
        if _split is not None:          # nested: the outer split goes on
            return self
        self._errors = np.geterr()      # np.errstate is per thread: pass it on
        if self.threads > 1:
            from threadpoolctl import ThreadpoolController
            self._blas = ThreadpoolController().select(user_api="blas")
            self._saved = [lib.get_num_threads()
                           for lib in self._blas.lib_controllers]
            for lib in self._blas.lib_controllers:
                lib.set_num_threads(1)
            for _ in range(self.threads - 1):
                tasks = queue.SimpleQueue()
                helper = threading.Thread(target=self._serve, args=(tasks,),
                                          daemon=True)
                helper.start()
                self._tasks.append(tasks)
                self._helpers.append(helper)
            _split = self
        return self

    def __exit__(self, *exc):
        global _split
        if _split is self:
            _split = None
        for tasks in self._tasks:
            tasks.put(None)
        for helper in self._helpers:
            helper.join()
        if self._blas is not None:
            for lib, n in zip(self._blas.lib_controllers, self._saved):
                lib.set_num_threads(n)
        return False

    def _serve(self, tasks):
        with np.errstate(**self._errors):
            while True:
                task = tasks.get()
                if task is None:
                    return
                try:
                    task()
                    self._done.put(None)
                except BaseException as err:      # handed to the caller
                    self._done.put(err)

    def run(self, work, bounds):
        """``work(lo, hi)`` for each (lo, hi) in ``bounds``: the first on
        this thread, the others on the helpers; returns the results in
        order."""
        results = [None] * len(bounds)

        def task(i):
            results[i] = work(*bounds[i])

        for i in range(1, len(bounds)):
            self._tasks[i - 1].put(lambda i=i: task(i))
        error = None
        try:
            task(0)
        except BaseException as err:
            error = err
        for _ in range(1, len(bounds)):
            err = self._done.get()
            error = error or err
        if error is not None:
            raise error
        return results


def _parts(n, size):
    """How to split n examples holding ``size`` values in all: a list of
    (lo, hi) bounds, one per part."""
    split = _split
    if split is None or split.threads == 1 or size < split.MIN_SIZE \
            or n < split.threads or split.owner != threading.get_ident():
        return [(0, n)]
    edges = [n * i // split.threads for i in range(split.threads + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _each_part(work, n, size):
    """[work(lo, hi) for each part of n examples], in parallel if a
    BatchSplit is active and the work is large enough."""
    return _run(work, _parts(n, size))


def _run(work, bounds):
    """[work(lo, hi) for (lo, hi) in bounds], on the helper threads when a
    BatchSplit has enough of them, else one after the other."""
    split = _split
    if len(bounds) > 1 and split is not None \
            and split.threads >= len(bounds) \
            and split.owner == threading.get_ident():
        return split.run(work, bounds)
    return [work(lo, hi) for lo, hi in bounds]


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


def _nhwc(x):
    """An (N, C, H, W) array as (N, H, W, C) memory: free if channels-last."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


# ---------------------------------------------------------------------------
# Strategy: im2col in two memory orders, col2im by slabs
# ---------------------------------------------------------------------------
def im2col_rows(xh, k, stride, out_h, out_w, out, lo=0, hi=None):
    """Patches of images lo:hi of the padded NHWC input ``xh`` as rows of
    ``out`` (N*H'*W', k*k*C) in (kernel row, kernel column, channel) order.

    With channels last, the k pixels of one kernel row of a patch are k*C
    contiguous values of the input: the copy moves whole kernel rows
    (80 values for 5x5 on 16 channels), not single pixels.
    """
    n, h, w, c = xh.shape
    hi = n if hi is None else hi
    s = xh.strides
    # view[n, i, j, p, :] = the k*C values xh[n, i*stride + p, j*stride:+k, :]
    view = as_strided(xh[lo:hi], (hi - lo, out_h, out_w, k, k * c),
                      (s[0], s[1] * stride, s[2] * stride, s[1], s[3]),
                      writeable=False)
    rows = out.reshape(n, out_h, out_w, k, k * c)[lo:hi]
    np.copyto(rows, view)


def im2col_planes(xh, k, stride, out_h, out_w, out, lo=0, hi=None):
    """The same patch matrix for few channels, stored transposed: ``out``
    is (k*k*C, N*H'*W'), one plane per (kernel row, kernel column,
    channel), and ``out.T`` is im2col's matrix. With one channel a patch
    row is only k values long, while a plane is one strided slice of the
    input: k*k copies of whole images."""
    n, h, w, c = xh.shape
    hi = n if hi is None else hi
    planes = out.reshape(k, k, c, n, out_h, out_w)
    for p in range(k):
        for q in range(k):
            cell = xh[lo:hi, p:p + stride * out_h:stride,
                      q:q + stride * out_w:stride, :]
            planes[p, q, :, lo:hi] = cell.transpose(3, 0, 1, 2)


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


def _chunks(lo, hi, image_bytes):
    """Images lo:hi in chunks whose patch gradients (``image_bytes`` per
    image) stay near CHUNK_BYTES: a chunk's slabs are still in the cache
    when col2im adds them back."""
    count = max(1, -(-(hi - lo) * image_bytes // CHUNK_BYTES))
    edges = [lo + (hi - lo) * i // count for i in range(count + 1)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def conv2d_forward(x, w, b, stride=1, padding=0):
    """``kernels.conv2d_forward``'s result, channels-last: im2col (by rows
    for 4 or more input channels, by planes for fewer), one matrix product
    per part of the batch, the bias added on widened rows."""
    n, c, h, wd = x.shape
    f, _, k, _ = w.shape
    out_h = conv_output_size(h, k, stride, padding)
    out_w = conv_output_size(wd, k, stride, padding)
    xh = _nhwc(x)
    if padding:
        p = padding
        xh = np.pad(xh, ((0, 0), (p, p), (p, p), (0, 0)))
    pix = out_h * out_w
    w_mat = w.transpose(2, 3, 1, 0).reshape(k * k * c, f)
    by_rows = c >= 4
    if by_rows:
        cols = np.empty((n * pix, k * k * c), x.dtype)
    else:
        planes = np.empty((k * k * c, n * pix), x.dtype)
        cols = planes.T
    out = np.empty((n * pix, f), x.dtype)

    def work(lo, hi):
        if by_rows:
            im2col_rows(xh, k, stride, out_h, out_w, cols, lo, hi)
        else:
            im2col_planes(xh, k, stride, out_h, out_w, planes, lo, hi)
        part = out[lo * pix:hi * pix]
        np.matmul(cols[lo * pix:hi * pix], w_mat, out=part)
        if b is not None:
            add_per_channel(part, b)

    _each_part(work, n, cols.size)
    cache = (x.shape, cols, w, stride, padding, b is not None)
    return out.reshape(n, out_h, out_w, f).transpose(0, 3, 1, 2), cache


def conv2d_backward(dout, cache, input_grad=True):
    """Gradients (dx, dw, db) of ``conv2d_forward``; dx is None when
    ``input_grad`` is False, db when there is no bias. Each part of the
    batch adds its own dw and db, summed in order; dx comes from
    ``col2im_slabs``."""
    x_shape, cols, w, stride, padding, has_bias = cache
    n, c, h, wd = x_shape
    f, _, k, _ = w.shape
    d = _nhwc(dout)
    out_h, out_w = d.shape[1:3]
    pix = out_h * out_w
    d = d.reshape(-1, f)
    if input_grad:
        w_cells = w.transpose(2, 3, 0, 1).reshape(k * k, f, c)
        dxh = np.empty((n, h + 2 * padding, wd + 2 * padding, c), d.dtype)

    def work(lo, hi):
        rows = slice(lo * pix, hi * pix)
        dw = cols[rows].T @ d[rows]
        db = channel_sums(*widen(d[rows])) if has_bias else None
        if input_grad:
            for lo, hi in _chunks(lo, hi, pix * k * k * c * d.itemsize):
                slabs = np.matmul(d[lo * pix:hi * pix], w_cells)
                part = dxh[lo:hi]
                part[...] = 0
                col2im_slabs(slabs, part, k, stride, out_h, out_w)
        return dw, db

    results = _each_part(work, n, cols.size)
    dw = results[0][0]
    for other, _ in results[1:]:
        dw += other
    dw = np.ascontiguousarray(dw.reshape(k, k, c, f).transpose(3, 2, 0, 1))
    db = None
    if has_bias:
        db = results[0][1]
        for _, other in results[1:]:
            db += other
    dx = None
    if input_grad:
        if padding:
            p = padding
            dxh = dxh[:, p:-p, p:-p, :]
        dx = dxh.transpose(0, 3, 1, 2)
    return dx, dw, db


def linear_forward(x, w, b):
    """x @ w.T + b for x (N, in), w (out, in). Split between threads by
    output features, not by examples: each part is a whole column block
    of the product, so no part's sums are cut in two."""
    out = np.empty((len(x), len(w)), np.result_type(x, w))

    def work(lo, hi):
        np.matmul(x, w[lo:hi].T, out=out[:, lo:hi])
        if b is not None:
            out[:, lo:hi] += b[lo:hi]

    _each_part(work, len(w), x.size + out.size)
    return out


def linear_backward(dout, x, w, input_grad=True, bias=True):
    """(dx, dw, db) of ``linear_forward``; dx is None without
    ``input_grad``, db without ``bias``. Split by features too: dw and db
    by output features, dx by input features."""
    dw = np.empty(w.shape, np.result_type(dout, x))
    db = dout.sum(axis=0) if bias else None

    def weight_grad(lo, hi):
        np.matmul(dout[:, lo:hi].T, x, out=dw[lo:hi])

    _each_part(weight_grad, len(w), w.size + dout.size)
    dx = None
    if input_grad:
        dx = np.empty(x.shape, np.result_type(dout, w))

        def input_grad_part(lo, hi):
            np.matmul(dout, w[:, lo:hi], out=dx[:, lo:hi])

        _each_part(input_grad_part, w.shape[1], x.size + dout.size)
    return dx, dw, db


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


def _pool_chunks(lo, hi, image_bytes):
    """Images lo:hi in chunks of about POOL_CHUNK_BYTES of input: the
    pooling passes and their temporaries then stay in the core's cache.
    Every value is computed as without chunks (maxima and routing are
    exact)."""
    step = max(1, POOL_CHUNK_BYTES // image_bytes)
    return [(a, min(a + step, hi)) for a in range(lo, hi, step)]


def _tiles(xh, k, stride, out_h, out_w):
    return stride == k and xh.shape[1] == k * out_h \
        and xh.shape[2] == k * out_w


def maxpool2d_forward(x, kernel_size, stride=None):
    """``kernels.maxpool2d_forward``'s result, channels-last.

    When the windows tile the input (stride k, sizes divisible by k), the
    maximum is taken in two passes: over the k image rows of each window,
    whose pixels are contiguous (W*C values, long loops), then over its k
    columns. Otherwise, the maximum of the k*k strided slices.
    """
    k = kernel_size
    stride = stride or k
    n, c, h, w = x.shape
    out_h = conv_output_size(h, k, stride)
    out_w = conv_output_size(w, k, stride)
    xh = _nhwc(x)
    out = np.empty((n, out_h, out_w, c), x.dtype)
    tiles = _tiles(xh, k, stride, out_h, out_w)

    def work(lo, hi):
        for lo, hi in _pool_chunks(lo, hi, xh.strides[0]):
            part = xh[lo:hi]
            if tiles:
                rows = part.reshape(hi - lo, out_h, k, w * c)
                best_row = _max_of((rows[:, :, i] for i in range(k)),
                                   np.empty((hi - lo, out_h, w * c), x.dtype))
                cols = best_row.reshape(hi - lo, out_h, out_w, k, c)
                _max_of((cols[..., j, :] for j in range(k)), out[lo:hi])
            else:
                _max_of((part[:, p:p + stride * out_h:stride,
                              q:q + stride * out_w:stride, :]
                         for p in range(k) for q in range(k)), out[lo:hi])

    _each_part(work, n, xh.size)
    return out.transpose(0, 3, 1, 2), (xh, out, k, stride)


def maxpool2d_backward(dout, cache):
    """Route each window's gradient to the first pixel (in row-major
    order) holding its maximum, as ``kernels.maxpool2d_backward``.

    When the windows tile the input, first the scatter through a mask:
    each output and its gradient repeated k times along the rows
    (``np.repeat``), compared with the input a whole image row at a time.
    If every window holds its maximum once (the count of matches is the
    number of windows), the mask times the repeated gradient is the
    answer. Ties (a window of zeros after a ReLU) take the exact route
    below: cell by cell, each window's gradient to its first maximum.
    """
    xh, out, k, stride = cache
    n, out_h, out_w, c = out.shape
    d = _nhwc(dout)
    tiles = _tiles(xh, k, stride, out_h, out_w)
    dx = np.empty_like(xh) if tiles else np.zeros_like(xh)

    def work(lo, hi):
        for lo, hi in _pool_chunks(lo, hi, xh.strides[0]):
            route(lo, hi)

    def route(lo, hi):
        o, g, target = out[lo:hi], d[lo:hi], dx[lo:hi]
        if tiles and _scatter_through_mask(xh[lo:hi], o, g, target, k):
            return target
        free = np.ones(o.shape, dtype=bool)   # windows not yet routed
        hit = np.empty(o.shape, dtype=bool)
        for p in range(k):
            for q in range(k):
                cell = (slice(lo, hi), slice(p, p + stride * out_h, stride),
                        slice(q, q + stride * out_w, stride))
                np.equal(xh[cell], o, out=hit)
                hit &= free
                free ^= hit
                if tiles:
                    np.multiply(g, hit, out=dx[cell])
                else:
                    dx[cell] += g * hit
        return target

    _each_part(work, n, xh.size)
    return dx.transpose(0, 3, 1, 2)


def _scatter_through_mask(xh, out, d, dx, k):
    """dx = d routed through the mask ``xh == repeated out``, for windows
    that tile xh; False (dx untouched) if some window's maximum is tied."""
    m, out_h, out_w, c = out.shape
    row = out_w * k * c                         # values in one image row
    up = np.repeat(out, k, axis=2).reshape(m, out_h, 1, row)
    hit = xh.reshape(m, out_h, k, row) == up
    if np.count_nonzero(hit) != out.size:       # ties (or NaN)
        return False
    up = np.repeat(d, k, axis=2).reshape(m, out_h, 1, row)
    np.multiply(hit, up, out=dx.reshape(m, out_h, k, row))
    return True


# ---------------------------------------------------------------------------
# ReLU
# ---------------------------------------------------------------------------
def _flat(x):
    """x's values as a 1-D view in memory order, or None if not contiguous."""
    if x.flags.c_contiguous:
        return x.reshape(-1)
    if x.ndim == 4:
        t = x.transpose(0, 2, 3, 1)
        if t.flags.c_contiguous:
            return t.reshape(-1)
    return None


def relu_forward(x):
    """(max(x, 0), the mask x > 0), per part of the batch, in x's memory
    layout."""
    out, mask = np.empty_like(x), np.empty_like(x, dtype=bool)
    src, dst, m = _flat(x), _flat(out), _flat(mask)
    if src is None or dst is None or m is None:
        np.greater(x, 0, out=mask)
        np.multiply(x, mask, out=out)
        return out, mask
    per = len(src) // len(x)

    def work(lo, hi):
        part = slice(lo * per, hi * per)
        np.greater(src[part], 0, out=m[part])
        np.multiply(src[part], m[part], out=dst[part])

    _each_part(work, len(x), src.size)
    return out, mask


def relu_backward(dout, mask):
    """dout * mask, per part of the batch."""
    out = np.empty_like(mask, dtype=dout.dtype)
    src, dst, m = _flat(dout), _flat(out), _flat(mask)
    if src is None or dst is None or m is None \
            or dout.strides != out.strides:
        return dout * mask
    per = len(src) // len(dout)

    def work(lo, hi):
        part = slice(lo * per, hi * per)
        np.multiply(src[part], m[part], out=dst[part])

    _each_part(work, len(dout), src.size)
    return out


# ---------------------------------------------------------------------------
# Batch normalisation, its statistics combined between the parts
# ---------------------------------------------------------------------------
def _row_slices(wide):
    """Slices of a widened matrix's rows, about BN_CHUNK_BYTES each: the
    several passes of BatchNorm over one slice find it still in the
    core's cache."""
    step = max(1, BN_CHUNK_BYTES // (wide.shape[1] * wide.itemsize))
    return [slice(i, i + step) for i in range(0, len(wide), step)]


BN_CHUNK_BYTES = 1 << 18   # NOTE: 256 KB; three such arrays fit in L2


def batchnorm_forward(x, gamma, beta, running_mean, running_var,
                      momentum=0.1, eps=1e-5, training=True):
    """``kernels.batchnorm_forward``'s result, on widened rows, per part.

    Each part of the batch centres its rows on its own mean and sums the
    squares (two passes over the part, no waiting for the others); the
    parts' means and sums of squares then combine exactly (Chan et al.'s
    parallel variance: M2 = sum M2_i + sum n_i (mean_i - mean)^2). The
    output, ``(x - mean_i) * a + (beta + (mean_i - mean) * a)`` with
    ``a = gamma / sqrt(var + eps)``, is one multiply and one add per
    value. The passes after the first run slice by slice (``_row_slices``).
    """
    rows = x if x.ndim == 2 else _nhwc(x).reshape(-1, x.shape[1])
    m, c = rows.shape
    out = np.empty_like(rows)
    if not training:
        scale, shift = batchnorm_eval_affine(gamma, beta, running_mean,
                                             running_var, eps)
        affine_per_channel(rows, scale, shift, out=out)
        return _like(out, x.shape), None
    n = len(x)
    per = m // n
    xc = np.empty_like(rows)

    def stats(lo, hi):
        part = slice(lo * per, hi * per)
        wide, r = widen(rows[part])
        mean = channel_sums(wide, r) / (wide.size // c)
        centred = xc[part].reshape(wide.shape)
        minus_mean, m2 = -tiled(mean, r), 0
        for s in _row_slices(wide):
            np.add(wide[s], minus_mean, out=centred[s])
            m2 = m2 + np.einsum("ij,ij->j", centred[s], centred[s])
        return (hi - lo) * per, mean, m2.reshape(r, -1).sum(axis=0)

    bounds = _parts(n, rows.size)
    parts = _run(stats, bounds)
    mean = sum(k * mean_i for k, mean_i, _ in parts) / m
    m2 = sum(m2_i + k * (mean_i - mean) ** 2 for k, mean_i, m2_i in parts)
    var = m2 / m
    inv_std = 1 / np.sqrt(var + eps)
    a = gamma * inv_std
    shifts = {b: beta + (mean_i - mean) * a
              for b, (_, mean_i, _) in zip(bounds, parts)}

    def normalise(lo, hi):
        part = slice(lo * per, hi * per)
        wide, r = widen(xc[part])
        target = out[part].reshape(wide.shape)
        scale, shift = tiled(a, r), tiled(shifts[lo, hi], r)
        for s in _row_slices(wide):
            np.multiply(wide[s], scale, out=target[s])
            target[s] += shift

    _run(normalise, bounds)
    running_mean *= 1 - momentum
    running_mean += momentum * mean
    running_var *= 1 - momentum
    running_var += momentum * var * (m / max(m - 1, 1))
    offsets = [mean_i - mean for _, mean_i, _ in parts]   # o_i
    cache = (x.shape, xc, offsets, bounds, inv_std, gamma)
    return _like(out, x.shape), cache


def batchnorm_backward(dout, cache):
    """``kernels.batchnorm_backward``'s result, per part: with
    xc_i = x - mean_i the part's centred rows and o_i = mean_i - mean,

      dbeta  = sum_i sum(dy_i)
      dgamma = inv_std * sum_i (sum(dy_i * xc_i) + o_i * sum(dy_i))
      dx     = a * dy + k1 * (xc_i + o_i) + k2,
               k1 = -a * inv_std * dgamma / M,  k2 = -a * dbeta / M,

    each pass slice by slice.
    """
    if cache is None:
        raise RuntimeError("batchnorm_backward needs a forward pass in "
                           "training mode; call model.train() first")
    shape, xc, offsets, bounds, inv_std, gamma = cache
    n = shape[0]
    d = dout if len(shape) == 2 else _nhwc(dout).reshape(xc.shape)
    m, c = xc.shape
    per = m // n
    dx = np.empty(xc.shape, np.result_type(d, xc))

    def sums(lo, hi):
        part = slice(lo * per, hi * per)
        wide, r = widen(d[part])
        centred = xc[part].reshape(wide.shape)
        total = dots = 0
        for s in _row_slices(wide):
            total = total + wide[s].sum(axis=0)
            dots = dots + np.einsum("ij,ij->j", wide[s], centred[s])
        return total.reshape(r, -1).sum(axis=0), \
            dots.reshape(r, -1).sum(axis=0)

    parts = _run(sums, bounds)          # the forward pass's parts
    dbeta = sum(s for s, _ in parts)
    dgamma = sum(dot + o * s for (s, dot), o in zip(parts, offsets)) * inv_std
    a = gamma * inv_std
    k1 = -a * inv_std * dgamma / m
    k2 = -a * dbeta / m
    shifts = {b: k2 + k1 * o for b, o in zip(bounds, offsets)}

    def grad(lo, hi):
        part = slice(lo * per, hi * per)
        wide, r = widen(d[part])
        centred = xc[part].reshape(wide.shape)
        target = dx[part].reshape(wide.shape)
        scale, k1_r, shift = tiled(a, r), tiled(k1, r), tiled(shifts[lo, hi], r)
        for s in _row_slices(wide):
            np.multiply(wide[s], scale, out=target[s])
            target[s] += centred[s] * k1_r
            target[s] += shift

    _run(grad, bounds)
    return _like(dx, shape), dgamma, dbeta


def _like(rows, shape):
    """An (N, C, H, W) view of (N*H*W, C) rows, or the rows if 2-D."""
    if len(shape) == 2:
        return rows
    n, c, h, w = shape
    return rows.reshape(n, h, w, c).transpose(0, 3, 1, 2)
