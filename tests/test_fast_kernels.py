"""Each strategy of nnlib.fast_kernels against the naive loop references
(and the chapter's kernels), on the whole batch and split between threads."""
import threading

import numpy as np
import pytest

from nnlib import fast_kernels as F
from nnlib import kernels as K

CONV_CASES = [
    # (N, C, H, W, F, k, stride, padding)
    (2, 1, 8, 8, 3, 5, 1, 0),      # one input channel: im2col by planes
    (2, 3, 7, 7, 4, 3, 1, 0),
    (2, 16, 9, 9, 5, 5, 1, 0),     # many channels: im2col by kernel rows
    (3, 5, 9, 8, 2, 3, 2, 1),      # stride, padding, non-square input
    (2, 4, 6, 6, 3, 2, 2, 0),
    (1, 2, 5, 5, 2, 5, 1, 2),
]


def _channels_last(x):
    """The same values, laid out N, H, W, C in memory."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@pytest.fixture(params=[1, 2, 3], ids=["whole", "split2", "split3"])
def split(request, monkeypatch):
    """Run the test on the whole batch, or split between 2 or 3 threads
    (with no minimum size, so that tiny test batches split too)."""
    monkeypatch.setattr(F.BatchSplit, "MIN_SIZE", 0)
    if request.param == 1:
        yield None
        return
    with F.BatchSplit(request.param) as s:
        yield s


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
@pytest.mark.parametrize("layout", [np.ascontiguousarray, _channels_last])
def test_conv_matches_naive(case, layout, split):
    n, c, h, w, f, k, s, p = case
    rng = np.random.default_rng(0)
    x = layout(rng.standard_normal((n, c, h, w)))
    wt = rng.standard_normal((f, c, k, k))
    b = rng.standard_normal(f)
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


def test_linear_matches_the_formula(split):
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


@pytest.fixture(params=[False, True], ids=["one-chunk", "image-chunks"])
def pool_chunks(request, monkeypatch):
    """Pool the whole part at once, or one image at a time."""
    if request.param:
        monkeypatch.setattr(F, "POOL_CHUNK_BYTES", 1)


@pytest.mark.parametrize("k,s,size", [(2, 2, 8), (2, 2, 9), (3, 3, 9),
                                      (2, 1, 9), (3, 2, 9)])
def test_maxpool_matches_naive(k, s, size, split, pool_chunks):
    """Windows that tile the input (8 by 2, 9 by 3) take the two-pass
    path; the others, the strided slices."""
    rng = np.random.default_rng(3)
    x = _channels_last(rng.standard_normal((4, 3, size, size + 2 * k)))
    out, cache = F.maxpool2d_forward(x, k, s)
    ref, ref_cache = K.maxpool2d_forward_naive(x, k, s)
    np.testing.assert_array_equal(out, ref)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(F.maxpool2d_backward(dout, cache),
                               K.maxpool2d_backward_naive(dout, ref_cache))


@pytest.mark.parametrize("size", [4, 6])
def test_maxpool_ties_send_the_gradient_to_the_first_maximum(size, split,
                                                            pool_chunks):
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
    x = _channels_last(np.stack([rng.standard_normal((3, 6, 6)),
                                 np.zeros((3, 6, 6))]))
    out, cache = F.maxpool2d_forward(x, 2)
    dout = rng.standard_normal(out.shape)
    _, ref_cache = K.maxpool2d_forward_naive(x, 2)
    np.testing.assert_array_equal(F.maxpool2d_backward(dout, cache),
                                  K.maxpool2d_backward_naive(dout, ref_cache))


@pytest.mark.parametrize("layout", [np.ascontiguousarray, _channels_last])
def test_relu(layout, split):
    x = layout(np.random.default_rng(5).standard_normal((4, 3, 5, 5)))
    out, mask = F.relu_forward(x)
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    np.testing.assert_array_equal(mask, x > 0)
    dout = _channels_last(np.ones_like(x))
    np.testing.assert_array_equal(F.relu_backward(dout, mask), x > 0)


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 5, 5), (6, 16, 8, 8),
                                   (3, 32, 3, 3), (64, 16, 24, 24)])
def test_batchnorm_matches_naive(shape, split):
    """Split between threads, the parts' statistics combine exactly."""
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


def test_float32_stays_float32(split):
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


def test_split_results_do_not_depend_on_timing(monkeypatch):
    """The same split gives the same bits, run after run."""
    monkeypatch.setattr(F.BatchSplit, "MIN_SIZE", 0)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((16, 4, 10, 10)).astype(np.float32)
    w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
    runs = []
    for _ in range(5):
        with F.BatchSplit(2):
            out, cache = F.conv2d_forward(x, w, None)
            runs.append((out.copy(), F.conv2d_backward(out, cache)[1]))
    for out, dw in runs[1:]:
        np.testing.assert_array_equal(out, runs[0][0])
        np.testing.assert_array_equal(dw, runs[0][1])


def test_split_passes_errors_on_and_restores_blas():
    from threadpoolctl import threadpool_info
    before = [lib["num_threads"] for lib in threadpool_info()
              if lib["user_api"] == "blas"]
    with pytest.raises(ZeroDivisionError):
        with F.BatchSplit(2) as split:
            split.run(lambda lo, hi: 1 / lo, [(0, 1), (1, 2)])
    with pytest.raises(ZeroDivisionError):
        with F.BatchSplit(2) as split:
            split.run(lambda lo, hi: 1 / (hi - 2), [(0, 1), (1, 2)])
    after = [lib["num_threads"] for lib in threadpool_info()
             if lib["user_api"] == "blas"]
    assert before == after and F._split is None


def test_only_the_owning_thread_splits(monkeypatch):
    monkeypatch.setattr(F.BatchSplit, "MIN_SIZE", 0)
    seen = []
    with F.BatchSplit(2):
        assert len(F._parts(8, 100)) == 2
        t = threading.Thread(target=lambda: seen.append(F._parts(8, 100)))
        t.start()
        t.join()
    assert seen == [[(0, 8)]]


def test_kernel_too_large_is_a_clear_error():
    with pytest.raises(ValueError, match="does not fit"):
        F.conv2d_forward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 5, 5)), None)


def test_the_mask_scatter_hands_ties_to_the_exact_route():
    x = np.zeros((1, 4, 4, 1))
    x[0, 0, 0, 0] = 1.0                     # one window without a tie
    out, _ = F.maxpool2d_forward(x.transpose(0, 3, 1, 2), 2)
    o = out.transpose(0, 2, 3, 1)
    dx = np.full_like(x, 7.0)
    assert not F._scatter_through_mask(x, o, np.ones_like(o), dx, 2)
    assert (dx == 7.0).all()                # untouched
    x = np.random.default_rng(0).standard_normal((1, 4, 4, 1))
    o = F.maxpool2d_forward(x.transpose(0, 3, 1, 2), 2)[0].transpose(0, 2, 3, 1)
    assert F._scatter_through_mask(x, o, np.ones_like(o), dx, 2)
    assert dx.sum() == 4 and set(np.unique(dx)) == {0.0, 1.0}


def test_a_nested_split_leaves_the_outer_one_in_charge(monkeypatch):
    monkeypatch.setattr(F.BatchSplit, "MIN_SIZE", 0)
    with F.BatchSplit(2) as outer:
        with F.BatchSplit(3):
            assert F._split is outer and len(F._parts(9, 100)) == 2
        assert F._split is outer
    assert F._split is None


def test_helpers_keep_the_callers_errstate():
    with np.errstate(divide="raise"):
        with F.BatchSplit(2) as split:
            with pytest.raises(FloatingPointError):
                split.run(lambda lo, hi: np.float64(lo) / np.float64(0.0)
                          if lo else None, [(0, 1), (1, 2)])
