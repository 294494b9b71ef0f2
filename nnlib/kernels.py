"""The compute kernels as chapter 4 writes them: convolution by im2col, max
pooling, batch normalisation.

Pure functions: each ``*_forward`` returns ``(out, cache)`` and each
``*_backward`` takes ``(dout, cache)``. Three versions of each idea live in
the library, and the tests prove that they agree:

- ``*_naive``: the definition, with plain loops over output positions. It
  explains and it is the reference; it is far too slow to train with.
- the kernels in this module: the chapter's code (im2col plus one matrix
  product, the k*k shifted slices, BatchNorm on the (pixels, channels)
  matrix), with stride and padding added. Read these first.
- ``nnlib.fast_kernels``: the same numbers computed with speed tricks
  (memory layouts chosen per shape, widened views, work in cache-sized
  chunks). The layers call those.

Arguments and results have PyTorch's shape (N, C, H, W). A convolution's
matrix product gives one row of F channels per output pixel, so its output
is handed back as an (N, F, H', W') *view* of (N, H', W', F) memory:
channels last, as PyTorch's ``channels_last`` memory format (chapter 4,
"Aside: channels last in memory").
"""
import numpy as np

from .layout import as_rows, from_rows

__all__ = [
    "im2col", "col2im", "conv_output_size",
    "conv2d_forward", "conv2d_backward",
    "conv2d_forward_naive", "conv2d_backward_naive",
    "maxpool2d_forward", "maxpool2d_backward",
    "maxpool2d_forward_naive", "maxpool2d_backward_naive",
    "batchnorm_forward", "batchnorm_backward", "batchnorm_eval_affine",
    "batchnorm_forward_naive", "batchnorm_backward_naive",
    "update_running_stats",
]


def conv_output_size(size, kernel_size, stride=1, padding=0):
    """H' = floor((H + 2P - k) / s) + 1, or an error if the kernel does not fit."""
    out = (size + 2 * padding - kernel_size) // stride + 1
    if out < 1:
        raise ValueError(f"a {kernel_size}x{kernel_size} kernel with padding "
                         f"{padding} does not fit an input of size {size}")
    return out


def _pad(x, padding):
    """x (N, C, H, W) with ``padding`` rows and columns of zeros around."""
    if not padding:
        return x
    p = padding
    return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))


# ---------------------------------------------------------------------------
# im2col / col2im (chapter 4, "im2col: the convolution as one matrix product")
# ---------------------------------------------------------------------------
def im2col(x, kernel_size, stride=1, padding=0):
    """Patches as rows: (N, C, H, W) -> (N*H'*W', C*k*k).

    Row (n, i, j) holds the patch under the kernel at output position
    (i, j) of image n, flattened in (channel, kernel row, kernel column)
    order, like ``W.reshape(F, -1)``: the convolution is then
    ``im2col(x, k) @ W.reshape(F, -1).T``.

    The loops run over the k*k cells of the kernel, never over output
    positions: under cell (p, q), the pixels of all output positions form
    one strided slice of the (padded) input.
    """
    n, c, h, w = x.shape
    k, s = kernel_size, stride
    out_h = conv_output_size(h, k, s, padding)
    out_w = conv_output_size(w, k, s, padding)
    xp = _pad(x, padding)
    cols = np.empty((n, out_h, out_w, c, k, k), dtype=x.dtype)
    for p in range(k):
        for q in range(k):
            cell = xp[:, :, p:p + s * out_h:s, q:q + s * out_w:s]
            cols[..., p, q] = cell.transpose(0, 2, 3, 1)    # (N, H', W', C)
    return cols.reshape(n * out_h * out_w, c * k * k)


def col2im(cols, x_shape, kernel_size, stride=1, padding=0):
    """The adjoint of im2col: add each row back onto the patch it came from.

    ``cols`` is what ``im2col`` returns, (N*H'*W', C*k*k) in (channel,
    kernel row, kernel column) order; the result has ``x_shape``
    (N, C, H, W). A pixel copied into several rows receives the sum of
    their values: this is how the gradient with respect to im2col's copies
    becomes the gradient with respect to the input.
    """
    n, c, h, w = x_shape
    k, s = kernel_size, stride
    out_h = conv_output_size(h, k, s, padding)
    out_w = conv_output_size(w, k, s, padding)
    d = cols.reshape(n, out_h, out_w, c, k, k)
    dxp = np.zeros((n, c, h + 2 * padding, w + 2 * padding), cols.dtype)
    for p in range(k):
        for q in range(k):
            dxp[:, :, p:p + s * out_h:s, q:q + s * out_w:s] += \
                d[..., p, q].transpose(0, 3, 1, 2)
    return dxp[:, :, padding:padding + h, padding:padding + w]


# ---------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------
def conv2d_forward(x, w, b, stride=1, padding=0):
    """Convolution (cross-correlation, as PyTorch's) of x (N, C, H, W) with
    w (F, C, k, k) and bias b (F,) or None:

        out[n, f, i, j] = b[f] + sum_{c, p, q} w[f, c, p, q] *
                          xpad[n, c, i*stride + p, j*stride + q]

    computed as one matrix product of im2col's patches with the flattened
    kernels (chapter 4, "im2col: the convolution as one matrix product").
    """
    n, c, h, wd = x.shape
    f, _, k, _ = w.shape
    out_h = conv_output_size(h, k, stride, padding)
    out_w = conv_output_size(wd, k, stride, padding)
    cols = im2col(x, k, stride, padding)               # (N*H'*W', C*k*k)
    y_mat = cols @ w.reshape(f, -1).T                  # (N*H'*W', F)
    if b is not None:
        y_mat += b
    out = y_mat.reshape(n, out_h, out_w, f).transpose(0, 3, 1, 2)
    return out, (x.shape, cols, w, stride, padding)


def conv2d_backward(dout, cache):
    """Gradients (dx, dw, db) of ``conv2d_forward``: the backward pass of
    its matrix product, then col2im (chapter 4, "The backward pass of a
    convolution")."""
    x_shape, cols, w, stride, padding = cache
    f, _, k, _ = w.shape
    dy_mat = dout.transpose(0, 2, 3, 1).reshape(-1, f)    # (N*H'*W', F)
    dw = (cols.T @ dy_mat).T.reshape(w.shape)             # (F, C, k, k)
    db = dy_mat.sum(axis=0)                               # (F,)
    dcols = dy_mat @ w.reshape(f, -1)                     # (N*H'*W', C*k*k)
    dx = col2im(dcols, x_shape, k, stride, padding)
    return dx, dw, db


def conv2d_forward_naive(x, w, b, stride=1, padding=0):
    """The definition, with a loop over every output value (chapter 4,
    "Convolution, written as loops"). Slow; a reference."""
    n, c, h, wd = x.shape
    f, _, k, _ = w.shape
    oh = conv_output_size(h, k, stride, padding)
    ow = conv_output_size(wd, k, stride, padding)
    xp = _pad(x, padding)
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
    xp = _pad(x, padding)
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
# Max pooling (chapter 4, "Max pooling")
# ---------------------------------------------------------------------------
def _windows(x, k, stride, out_h, out_w):
    """For each cell (p, q) of a k x k window: the slice of x (N, C, H, W)
    holding that cell of every window."""
    for p in range(k):
        for q in range(k):
            yield x[:, :, p:p + stride * out_h:stride,
                    q:q + stride * out_w:stride]


def maxpool2d_forward(x, kernel_size, stride=None):
    """Max over each k x k window of x (N, C, H, W): the element-wise
    maximum of the k*k strided slices, one per cell of the window."""
    stride = stride or kernel_size
    n, c, h, w = x.shape
    out_h = conv_output_size(h, kernel_size, stride)
    out_w = conv_output_size(w, kernel_size, stride)
    out = None
    for cell in _windows(x, kernel_size, stride, out_h, out_w):
        out = cell.copy() if out is None else np.maximum(out, cell)
    return out, (x, out, kernel_size, stride)


def maxpool2d_backward(dout, cache):
    """Each window's gradient goes to the pixel that held its maximum; if
    the maximum occurs twice, to the first (as PyTorch), so that a window's
    gradients still add up to its output's."""
    x, out, k, stride = cache
    dx = np.zeros_like(x)
    free = np.ones(out.shape, dtype=bool)   # windows not yet given their gradient
    cells = zip(_windows(x, k, stride, *out.shape[2:]),
                _windows(dx, k, stride, *out.shape[2:]))
    for cell, dcell in cells:
        is_max = (cell == out) & free
        free &= ~is_max
        dcell += dout * is_max
    return dx


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
# Batch normalisation (chapter 4, "Batch normalisation")
# ---------------------------------------------------------------------------
def batchnorm_forward(x, gamma, beta, running_mean, running_var,
                      momentum=0.1, eps=1e-5, training=True):
    """Batch normalisation of x (N, C) or (N, C, H, W), per channel.

    Training: normalise each column of the (pixels, channels) matrix with
    its mean and (biased) variance, scale by ``gamma``, shift by ``beta``,
    and update the running statistics in place with PyTorch's convention,
    ``running = (1 - momentum) * running + momentum * batch`` (unbiased
    variance). Evaluation: ``x * scale + shift`` with the running
    statistics (``batchnorm_eval_affine``); the cache is then None.
    """
    X = as_rows(x)                                  # (M, C)
    if not training:
        scale, shift = batchnorm_eval_affine(gamma, beta, running_mean,
                                             running_var, eps)
        return from_rows(X * scale + shift, x.shape), None
    m = len(X)
    mean = X.mean(axis=0)                           # (C,)
    var = X.var(axis=0)                             # (C,), divided by M
    inv_std = 1 / np.sqrt(var + eps)
    X_hat = (X - mean) * inv_std                    # (M, C)
    out = gamma * X_hat + beta
    update_running_stats(running_mean, running_var, mean, var, m, momentum)
    return from_rows(out, x.shape), (x.shape, X_hat, inv_std, gamma)


def update_running_stats(running_mean, running_var, mean, var, count,
                         momentum):
    """PyTorch's running statistics, updated in place from a batch of
    ``count`` rows: ``running = (1 - momentum) * running + momentum * batch``,
    with the batch's variance made unbiased (times count / (count - 1))."""
    running_mean *= 1 - momentum
    running_mean += momentum * mean
    running_var *= 1 - momentum
    running_var += momentum * var * (count / max(count - 1, 1))


def batchnorm_eval_affine(gamma, beta, running_mean, running_var, eps=1e-5):
    """BatchNorm in evaluation mode as ``x * scale + shift`` per channel:
    ``gamma * (x - mean) / sqrt(var + eps) + beta`` with the running
    statistics, whose two terms can be computed once (chapter 4,
    "Predicting faster: the same numbers with less work")."""
    scale = gamma / np.sqrt(running_var + eps)
    return scale, beta - running_mean * scale


def batchnorm_backward(dout, cache):
    """Gradients (dx, dgamma, dbeta) of batch normalisation in training mode:

      dbeta  = sum(dY),  dgamma = sum(dY * X_hat)   (over the rows)
      dX     = inv_std * (dX_hat - mean(dX_hat) - X_hat * mean(dX_hat * X_hat))

    with dX_hat = dY * gamma (chapter 4, "Batch normalisation", "Backward").
    """
    if cache is None:
        raise RuntimeError("batchnorm_backward needs a forward pass in "
                           "training mode; call model.train() first")
    shape, X_hat, inv_std, gamma = cache
    dY = as_rows(dout)
    dbeta = dY.sum(axis=0)
    dgamma = (dY * X_hat).sum(axis=0)
    dX_hat = dY * gamma
    dX = inv_std * (dX_hat - dX_hat.mean(axis=0)
                    - X_hat * (dX_hat * X_hat).mean(axis=0))
    return from_rows(dX, shape), dgamma, dbeta


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
