"""Each strategy of nnlib.fast_kernels against the naive loop references
(and the chapter's kernels), with its chunks as large as in training and
as small as one image (or a few rows) each."""
import numpy as np
import pytest

from kernel_cases import CONV_CASES, LAYOUTS, channels_last, conv_problem
from nnlib import fast_kernels as F
from nnlib import kernels as K

@pytest.fixture(params=[False, True], ids=["cache-sized", "tiny-chunks"])
def chunks(request, monkeypatch):
    """The chunk sizes of training, or chunks so small that every chunked
    loop (col2im, pooling, BatchNorm's slices) runs many times."""
    if request.param:
        monkeypatch.setattr(F, "CHUNK_BYTES", 1)
        monkeypatch.setattr(F, "POOL_CHUNK_BYTES", 1)
        monkeypatch.setattr(F, "BN_CHUNK_BYTES", 1)


def _pq_c(cols, c, k):
    """im2col's (channel, row, column) columns in (row, column, channel)
    order, as the fast kernels store them."""
    n = len(cols)
    return cols.reshape(n, c, k, k).transpose(0, 2, 3, 1).reshape(n, -1)


@pytest.mark.parametrize("case", CONV_CASES)
def test_im2col_rows_and_planes_hold_im2cols_patches(case):
    n, c, h, w, f, k, s, p = case
    x = np.random.default_rng(0).standard_normal((n, c, h, w))
    want = _pq_c(K.im2col(x, k, s, p), c, k)
    xh = np.pad(x.transpose(0, 2, 3, 1), ((0, 0), (p, p), (p, p), (0, 0)))
    oh, ow = K.conv_output_size(h, k, s, p), K.conv_output_size(w, k, s, p)
    rows = np.empty_like(want)
    F.im2col_rows(xh, k, s, oh, ow, rows)
    np.testing.assert_array_equal(rows, want)
    planes = np.empty(want.T.shape)
    F.im2col_planes(xh, k, s, oh, ow, planes)
    np.testing.assert_array_equal(planes.T, want)


def test_col2im_slabs_is_col2im():
    rng = np.random.default_rng(1)
    n, c, h, k, s = 2, 3, 7, 3, 2
    oh = K.conv_output_size(h, k, s)
    dcols = rng.standard_normal((n * oh * oh, c * k * k))
    want = K.col2im(dcols, (n, c, h, h), k, s)
    slabs = np.ascontiguousarray(
        dcols.reshape(-1, c, k * k).transpose(2, 0, 1))
    dxh = np.zeros((n, h, h, c))
    F.col2im_slabs(slabs, dxh, k, s, oh, oh)
    np.testing.assert_allclose(dxh.transpose(0, 3, 1, 2), want, rtol=1e-12)


@pytest.mark.parametrize("m,c", [(64 * 576, 16), (48, 3), (7, 5), (6, 600)])
def test_widened_rows_give_per_channel_sums(m, c):
    rows = np.random.default_rng(2).standard_normal((m, c))
    wide, r = F.widen(rows)
    assert wide.base is rows or wide.base is rows.base    # a view
    assert wide.shape[1] == r * c and (r == 1 or r * c <= F.WIDE)
    np.testing.assert_allclose(F.channel_sums(wide, r), rows.sum(axis=0))
    np.testing.assert_allclose(F.channel_dots(wide, wide, r),
                               (rows * rows).sum(axis=0))
    v, t = np.arange(c) + 1.0, -np.arange(c) * 0.5
    np.testing.assert_allclose(F.affine_per_channel(rows, v, t), rows * v + t)
    np.testing.assert_allclose(F.add_per_channel(rows.copy(), v), rows + v)


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_conv_matches_naive(case, layout, chunks):
    rng, x, wt, b, s, p = conv_problem(case, layout)
    out, cache = F.conv2d_forward(x, wt, b, s, p)
    ref, ref_cache = K.conv2d_forward_naive(x, wt, b, s, p)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
    dout = rng.standard_normal(out.shape)
    for got, want in zip(F.conv2d_backward(dout, cache),
                         K.conv2d_backward_naive(dout, ref_cache)):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    dx, dw, db = F.conv2d_backward(dout, cache, input_grad=False)
    assert dx is None
    F.conv2d_forward(x, wt, None, s, p)
    assert F.conv2d_backward(dout, F.conv2d_forward(x, wt, None, s, p)[1])[2] \
        is None


def test_conv_backward_in_many_chunks_on_wide_images(monkeypatch):
    """16 channels of 28x28, padded by 2 (more than BAND_WIDTH kernels
    wide: col2im by slabs), on a batch of 16: the input gradient computed
    in chunks of 1 to 16 images is always the chapter's kernel's."""
    rng = np.random.default_rng(9)
    n = 16
    x = channels_last(rng.standard_normal((n, 16, 28, 28)))
    w = rng.standard_normal((8, 16, 5, 5))
    out, cache = F.conv2d_forward(x, w, None, padding=2)
    assert F.input_grad_strategy(w.shape, (n, 32, 32, 16)) == "slabs"
    dout = channels_last(rng.standard_normal(out.shape))
    _, ref_cache = K.conv2d_forward(x, w, None, padding=2)
    want = K.conv2d_backward(dout, ref_cache)[0]
    image_bytes = 28 * 28 * 25 * 16 * 8       # one image's slabs
    for chunk_bytes in (image_bytes, 3 * image_bytes, 7 * image_bytes, 1 << 30):
        monkeypatch.setattr(F, "CHUNK_BYTES", chunk_bytes)
        count = len(F._chunks(n, image_bytes))
        assert count == max(1, -(-n * image_bytes // chunk_bytes))
        np.testing.assert_allclose(F.conv2d_backward(dout, cache)[0], want,
                                   rtol=1e-10, atol=1e-10)
    assert len(F._chunks(n, image_bytes)) == 1


def test_the_second_convolutions_input_gradient_by_image_rows():
    """Chapter 4's second convolution (16 channels of 12x12, 5x5): its
    input gradient by image rows (banded weights), as the chapter's
    kernel's, in float64 and in float32 as in training."""
    rng = np.random.default_rng(10)
    x = channels_last(rng.standard_normal((64, 16, 12, 12)))
    w, b = rng.standard_normal((32, 16, 5, 5)), rng.standard_normal(32)
    assert F.input_grad_strategy(w.shape, (64, 12, 12, 16)) == "rows"
    _, ref_cache = K.conv2d_forward(x, w, b)
    dout = rng.standard_normal((64, 32, 8, 8))
    want = K.conv2d_backward(dout, ref_cache)
    for dtype, tol in ((np.float64, 1e-10), (np.float32, 1e-4)):
        _, cache = F.conv2d_forward(x.astype(dtype), w.astype(dtype),
                                    b.astype(dtype))
        got = F.conv2d_backward(channels_last(dout.astype(dtype)), cache)
        for g, want_g in zip(got, want):
            assert g.dtype == dtype
            scale = np.abs(want_g).max()
            np.testing.assert_allclose(g, want_g, rtol=tol, atol=tol * scale)


def test_the_band_holds_each_weight_where_the_convolution_reads_it():
    # B[(p, u, c), (j, f)] = w[f, c, p, u - stride*j] inside the band,
    # zero outside, for a stride of 1 and of 2
    rng = np.random.default_rng(11)
    w = rng.standard_normal((3, 2, 3, 3))
    for stride, width in ((1, 7), (2, 9)):
        out_w = (width - 3) // stride + 1
        band = F.band_weights(w, width, stride, out_w).reshape(
            3, width, 2, out_w, 3)
        for p, u, c, j, f in np.ndindex(band.shape):
            q = u - stride * j
            want = w[f, c, p, q] if 0 <= q < 3 else 0.0
            assert band[p, u, c, j, f] == want


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_batchnorm_folded_into_the_convolution_is_conv_then_batchnorm(
        case, bias):
    # The chapter's convolution, then the chapter's BatchNorm, forward and
    # backward, against the fold that never computes the convolution's
    # output; the running statistics too.
    rng, x, w, b, s, p = conv_problem(case, channels_last)
    b = b if bias else None
    f = len(w)
    gamma, beta = rng.standard_normal(f), rng.standard_normal(f)
    stats = [(np.zeros(f), np.ones(f)) for _ in range(2)]
    if bias:
        b = b + 3.0          # a mean far from zero, as a bias may give
    y, conv_cache = K.conv2d_forward(x, w, b, s, p)
    want, bn_cache = K.batchnorm_forward(y, gamma, beta, *stats[0])
    got, cache = F.conv_batchnorm_forward(x, w, b, gamma, beta, *stats[1],
                                          stride=s, padding=p)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    for a, a_want in zip(stats[1], stats[0]):
        np.testing.assert_allclose(a, a_want, rtol=1e-9, atol=1e-12)
    dz = rng.standard_normal(want.shape)
    dy, dgamma, dbeta = K.batchnorm_backward(dz, bn_cache)
    _, dw, db = K.conv2d_backward(dy, conv_cache)
    got_dw, got_db, got_dgamma, got_dbeta = F.conv_batchnorm_backward(
        channels_last(dz), cache)
    np.testing.assert_allclose(got_dw, dw, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got_dgamma, dgamma, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got_dbeta, dbeta, rtol=1e-9, atol=1e-9)
    if bias:        # BatchNorm removes the bias: zero up to rounding
        assert np.abs(got_db).max() < 1e-9 and np.abs(db).max() < 1e-9
    else:
        assert got_db is None


@pytest.mark.parametrize("size,padding", [(8, 0), (9, 0), (6, 1)])
def test_batchnorm_and_pool_folded_into_the_convolution(size, padding):
    # The chapter's convolution, BatchNorm and 2x2 max pool against the
    # fold, with flat regions (tied maxima) and a positive, a negative and
    # a zero gamma (the pool then follows sign(gamma) times the
    # convolution): by window when the pool tiles the output (6x6, 6x6
    # padded), by maxpool2d otherwise (7x7).
    rng = np.random.default_rng(12)
    x = rng.standard_normal((5, 1, size, size))
    x[:2, :, :, :4] = -0.4                      # flat background
    w, b = rng.standard_normal((3, 1, 3, 3)), rng.standard_normal(3)
    gamma, beta = np.array([1.3, -0.7, 0.0]), rng.standard_normal(3)
    y, conv_cache = K.conv2d_forward(x, w, b, 1, padding)
    z, bn_cache = K.batchnorm_forward(y, gamma, beta, np.zeros(3), np.ones(3))
    want, pool_cache = K.maxpool2d_forward(z, 2)
    got, cache = F.conv_batchnorm_forward(
        channels_last(x), w, b, gamma, beta, np.zeros(3), np.ones(3),
        padding=padding, pool=2)
    assert cache[-1][0] == ("blocks" if size != 9 else "maxpool")
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    dout = rng.standard_normal(want.shape)
    dz = K.maxpool2d_backward(dout, pool_cache)
    dy, dgamma, dbeta = K.batchnorm_backward(dz, bn_cache)
    _, dw, _ = K.conv2d_backward(dy, conv_cache)
    got_dw, _, got_dgamma, got_dbeta = F.conv_batchnorm_backward(
        channels_last(dout), cache)
    for g, want_g in ((got_dw, dw), (got_dgamma, dgamma),
                      (got_dbeta, dbeta)):
        np.testing.assert_allclose(g, want_g, rtol=1e-9, atol=1e-9)


def test_the_blocks_route_each_window_to_its_first_maximum():
    # max_of_blocks on windows laid out by cell, with ties of 2, 3 and 4
    # pixels: the mask routes the gradient exactly as the chapter's pool.
    rng = np.random.default_rng(13)
    x = rng.integers(0, 3, (4, 3, 6, 8)).astype(float)  # many ties
    want_out, cache = K.maxpool2d_forward(x, 2)
    dout = rng.standard_normal(want_out.shape)
    want = K.maxpool2d_backward(dout, cache)
    n, c = 4, 3
    blocks = x.reshape(n, c, 3, 2, 4, 2).transpose(0, 3, 5, 2, 4, 1)
    top, mask = F.max_of_blocks(blocks.reshape(n, 4, -1))
    np.testing.assert_array_equal(
        top.reshape(n, 3, 4, c).transpose(0, 3, 1, 2), want_out)
    g = dout.transpose(0, 2, 3, 1).reshape(n, 1, -1)
    got = (mask * g).reshape(n, 2, 2, 3, 4, c).transpose(0, 5, 3, 1, 4, 2)
    np.testing.assert_array_equal(got.reshape(x.shape), want)


def test_batchnorm_folded_at_the_chapters_size_in_float32():
    # 64 MNIST-sized images through a 5x5 filter bank, with inputs that are
    # not centred (as pixels are not): the statistics from the patch
    # products hold to float32's precision.
    rng = np.random.default_rng(3)
    x = (rng.random((64, 1, 28, 28)) * 3 - 0.4).astype(np.float32)
    w = rng.standard_normal((16, 1, 5, 5)).astype(np.float32) * 0.3
    b = rng.standard_normal(16).astype(np.float32)
    gamma = rng.random(16).astype(np.float32) + 0.5
    beta = rng.standard_normal(16).astype(np.float32)
    x64 = [a.astype(np.float64) for a in (x, w, b, gamma, beta)]
    y, conv_cache = K.conv2d_forward(*x64[:3])
    want, bn_cache = K.batchnorm_forward(y, *x64[3:], np.zeros(16),
                                         np.ones(16))
    got, cache = F.conv_batchnorm_forward(
        x, w, b, gamma, beta, np.zeros(16, np.float32),
        np.ones(16, np.float32))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    dz = rng.standard_normal(want.shape)
    dy, dgamma, _ = K.batchnorm_backward(dz, bn_cache)
    _, dw, _ = K.conv2d_backward(dy, conv_cache)
    got_dw, _, got_dgamma, _ = F.conv_batchnorm_backward(
        channels_last(dz.astype(np.float32)), cache)
    assert got_dw.dtype == np.float32
    scale = np.abs(dw).max()
    np.testing.assert_allclose(got_dw, dw, rtol=1e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(got_dgamma, dgamma, rtol=1e-4, atol=1e-3)
    # and with the 2x2 pool, as fit runs chapter 4's CNN
    pooled, _ = F.conv_batchnorm_forward(
        x, w, b, gamma, beta, np.zeros(16, np.float32),
        np.ones(16, np.float32), pool=2)
    np.testing.assert_allclose(pooled, K.maxpool2d_forward(want, 2)[0],
                               rtol=1e-4, atol=1e-4)


def test_linear_matches_the_formula():
    rng = np.random.default_rng(3)
    x, w, b = (rng.standard_normal(s) for s in ((9, 5), (4, 5), (4,)))
    np.testing.assert_allclose(F.linear_forward(x, w, b), x @ w.T + b)
    dout = rng.standard_normal((9, 4))
    dx, dw, db = F.linear_backward(dout, x, w)
    np.testing.assert_allclose(dx, dout @ w)
    np.testing.assert_allclose(dw, dout.T @ x)
    np.testing.assert_allclose(db, dout.sum(axis=0))
    assert F.linear_backward(dout, x, w, input_grad=False, bias=False)[0::2] \
        == (None, None)


@pytest.mark.parametrize("k,s,size", [(2, 2, 8), (2, 2, 9), (3, 3, 9),
                                      (2, 1, 9), (3, 2, 9)])
def test_maxpool_matches_naive(k, s, size, chunks):
    """Windows that tile the input (8 by 2, 9 by 3) take the two-pass
    path; the others, the strided slices."""
    rng = np.random.default_rng(3)
    x = channels_last(rng.standard_normal((4, 3, size, size + 2 * k)))
    out, cache = F.maxpool2d_forward(x, k, s)
    ref, ref_cache = K.maxpool2d_forward_naive(x, k, s)
    np.testing.assert_array_equal(out, ref)
    dout = rng.standard_normal(out.shape)
    dx = F.maxpool2d_backward(dout, cache)
    want = K.maxpool2d_backward_naive(dout, ref_cache)
    if s == k:      # each pixel in one window: its gradient is copied, exactly
        np.testing.assert_array_equal(dx, want)
    else:           # overlapping windows add up in another order
        np.testing.assert_allclose(dx, want)


@pytest.mark.parametrize("size", [4, 6])
def test_maxpool_ties_send_the_gradient_to_the_first_maximum(size, chunks):
    # after a ReLU whole windows are 0; and a window may hold its maximum
    # twice: the gradient goes to the first in row-major order only
    rng = np.random.default_rng(4)
    x = rng.integers(0, 2, (2, 3, size, size)).astype(float)
    out, cache = F.maxpool2d_forward(x, 2)
    dout = rng.standard_normal(out.shape)
    dx = F.maxpool2d_backward(dout, cache)
    _, ref_cache = K.maxpool2d_forward_naive(x, 2)
    np.testing.assert_array_equal(dx, K.maxpool2d_backward_naive(dout,
                                                                 ref_cache))


def test_maxpool_chunks_with_and_without_ties_route_alike(monkeypatch):
    # one image with distinct values (the mask path), one of zeros (ties:
    # the exact route): pooled an image at a time, each takes its own path
    monkeypatch.setattr(F, "POOL_CHUNK_BYTES", 1)
    rng = np.random.default_rng(5)
    x = channels_last(np.stack([rng.standard_normal((3, 6, 6)),
                                 np.zeros((3, 6, 6))]))
    out, cache = F.maxpool2d_forward(x, 2)
    dout = rng.standard_normal(out.shape)
    _, ref_cache = K.maxpool2d_forward_naive(x, 2)
    np.testing.assert_array_equal(F.maxpool2d_backward(dout, cache),
                                  K.maxpool2d_backward_naive(dout, ref_cache))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_relu(layout):
    x = layout(np.random.default_rng(5).standard_normal((4, 3, 5, 5)))
    out, mask = F.relu_forward(x)
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    np.testing.assert_array_equal(mask, x > 0)
    dout = channels_last(np.ones_like(x))
    np.testing.assert_array_equal(F.relu_backward(dout, mask), x > 0)


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 5, 5), (6, 16, 8, 8),
                                   (3, 32, 3, 3), (64, 16, 24, 24)])
def test_batchnorm_matches_naive(shape, chunks):
    """Statistics over the whole batch, as PyTorch's, whatever the slices."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape) * 3 + 1
    if len(shape) == 4:
        x[: shape[0] // 2] += 5      # parts with different means
    c = shape[1]
    gamma, beta = rng.standard_normal(c), rng.standard_normal(c)
    mean, var = np.zeros(c), np.ones(c)
    out, cache = F.batchnorm_forward(x, gamma, beta, mean, var)
    ref, ref_cache = K.batchnorm_forward_naive(x, gamma, beta)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
    axes = (0,) if len(shape) == 2 else (0, 2, 3)
    np.testing.assert_allclose(mean, 0.1 * x.mean(axis=axes))
    np.testing.assert_allclose(var, 0.9 + 0.1 * x.var(axis=axes, ddof=1))
    dout = rng.standard_normal(shape)
    for got, want in zip(F.batchnorm_backward(dout, cache),
                         K.batchnorm_backward_naive(dout, ref_cache)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)


def test_batchnorm_eval_is_the_affine_map():
    x = np.array([[1.0, 2.0], [3.0, 6.0]])
    mean, var = np.array([1.0, 2.0]), np.array([4.0, 16.0])
    out, cache = F.batchnorm_forward(x, np.array([2.0, 1.0]),
                                     np.array([0.5, 0.0]), mean, var,
                                     eps=0.0, training=False)
    np.testing.assert_allclose(out, [[0.5, 0.0], [2.5, 1.0]])
    assert cache is None
    with pytest.raises(RuntimeError, match="model.train"):
        F.batchnorm_backward(x, cache)


def test_float32_stays_float32():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = np.zeros(4, np.float32)
    out, cache = F.conv2d_forward(x, w, b)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in F.conv2d_backward(out, cache))
    out, cache = F.batchnorm_forward(out, np.ones(4, np.float32), b,
                                     np.zeros(4, np.float32),
                                     np.ones(4, np.float32))
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32
               for g in F.batchnorm_backward(out, cache))


def test_kernel_too_large_is_a_clear_error():
    with pytest.raises(ValueError, match="does not fit"):
        F.conv2d_forward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 5, 5)), None)


def test_the_mask_of_maxima_reports_ties():
    x = np.zeros((1, 4, 4, 1))
    x[0, 0, 0, 0] = 1.0                     # one window without a tie
    out, cache = F.maxpool2d_forward(x.transpose(0, 3, 1, 2), 2)
    assert cache[0] == "mask" and cache[2] == [(0, 1)]     # tied
    mask = np.empty(x.shape, bool)
    assert not F._mask_of_maxima(x, out.transpose(0, 2, 3, 1), mask, 2)
    x = np.random.default_rng(0).standard_normal((1, 4, 4, 1))
    out, cache = F.maxpool2d_forward(x.transpose(0, 3, 1, 2), 2)
    assert cache[2] == []
    assert F._mask_of_maxima(x, out.transpose(0, 2, 3, 1), mask, 2)
    assert mask.sum() == 4
    np.testing.assert_array_equal(mask, cache[1])


def test_maxpool_strategies_and_inference_without_the_mask():
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 6))
    assert F.maxpool2d_forward(x, 2)[1][0] == "mask"
    assert F.maxpool2d_forward(x, 3, 2)[1][0] == "cells"
    out, cache = F.maxpool2d_forward(x, 2, keep_mask=False)
    np.testing.assert_array_equal(out, F.maxpool2d_forward(x, 2)[0])
    with pytest.raises(RuntimeError, match="keep_mask=True"):
        F.maxpool2d_backward(np.ones_like(out), cache)
