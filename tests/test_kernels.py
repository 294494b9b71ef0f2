"""The kernels as chapter 4 writes them agree with their naive loop
references; im2col and col2im are a matched pair in the chapter's order."""
import numpy as np
import pytest

from kernel_cases import CONV_CASES, LAYOUTS, channels_last, conv_problem
from nnlib import kernels as K



@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_conv_matches_naive(case, layout):
    rng, x, wt, b, s, p = conv_problem(case, layout)
    out, cache = K.conv2d_forward(x, wt, b, s, p)
    ref, ref_cache = K.conv2d_forward_naive(x, wt, b, s, p)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
    dout = rng.standard_normal(out.shape)
    for got, want in zip(K.conv2d_backward(dout, cache),
                         K.conv2d_backward_naive(dout, ref_cache)):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_im2col_rows_are_patches_in_the_chapters_order():
    x = np.arange(2 * 2 * 4 * 4, dtype=float).reshape(2, 2, 4, 4)
    cols = K.im2col(x, 3)
    assert cols.shape == (2 * 2 * 2, 2 * 3 * 3)
    # row (n=1, i=0, j=1): the patch x[1, :, 0:3, 1:4] in (channel, kernel
    # row, kernel column) order, as W.reshape(F, -1) flattens a kernel
    want = x[1, :, 0:3, 1:4].ravel()
    np.testing.assert_array_equal(cols[1 * 4 + 0 * 2 + 1], want)


def test_conv_is_im2col_times_the_flattened_kernels():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 6, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    y_mat = K.im2col(x, 3) @ w.reshape(4, -1).T
    out, _ = K.conv2d_forward(x, w, None)
    np.testing.assert_allclose(out.transpose(0, 2, 3, 1).reshape(-1, 4),
                               y_mat, rtol=1e-12)


def test_col2im_is_the_adjoint_of_im2col():
    # <im2col(x), y> == <x, col2im(y)> for every x, y: the defining
    # property. col2im takes exactly what im2col returns.
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 7, 7))
    k, s, p = 3, 2, 1
    cols = K.im2col(x, k, s, p)
    y = rng.standard_normal(cols.shape)
    back = K.col2im(y, x.shape, k, s, p)
    assert back.shape == x.shape
    assert np.isclose(np.sum(cols * y), np.sum(x * back))


def test_col2im_adds_up_the_copies():
    # with stride 1, a pixel is copied once per patch that covers it
    x = np.ones((1, 1, 4, 4))
    counts = K.col2im(K.im2col(x, 3), x.shape, 3)
    np.testing.assert_array_equal(counts[0, 0], [[1, 2, 2, 1], [2, 4, 4, 2],
                                                 [2, 4, 4, 2], [1, 2, 2, 1]])


@pytest.mark.parametrize("k,s,size", [(2, 2, 8), (2, 2, 9), (3, 3, 9),
                                      (2, 1, 9), (3, 2, 9)])
def test_maxpool_matches_naive(k, s, size):
    """Windows that tile the input (8 by 2, 9 by 3) take the two-pass
    path; the others, the strided slices."""
    rng = np.random.default_rng(3)
    x = channels_last(rng.standard_normal((2, 3, size, size + 2 * k)))
    out, cache = K.maxpool2d_forward(x, k, s)
    ref, ref_cache = K.maxpool2d_forward_naive(x, k, s)
    np.testing.assert_array_equal(out, ref)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(K.maxpool2d_backward(dout, cache),
                               K.maxpool2d_backward_naive(dout, ref_cache))


def test_maxpool_ties_send_the_gradient_once():
    # after a ReLU whole windows are 0: the gradient must not be copied
    # to every tied position (that would multiply it by 4)
    x = np.zeros((1, 1, 4, 4))
    out, cache = K.maxpool2d_forward(x, 2)
    dx = K.maxpool2d_backward(np.ones_like(out), cache)
    assert dx.sum() == out.size
    _, ref_cache = K.maxpool2d_forward_naive(x, 2)
    np.testing.assert_array_equal(
        dx, K.maxpool2d_backward_naive(np.ones_like(out), ref_cache))


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 5, 5), (6, 16, 8, 8),
                                   (3, 32, 3, 3)])
def test_batchnorm_matches_naive(shape):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape) * 3 + 1
    c = shape[1]
    gamma, beta = rng.standard_normal(c), rng.standard_normal(c)
    out, cache = K.batchnorm_forward(x, gamma, beta, np.zeros(c), np.ones(c))
    ref, ref_cache = K.batchnorm_forward_naive(x, gamma, beta)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
    dout = rng.standard_normal(shape)
    for got, want in zip(K.batchnorm_backward(dout, cache),
                         K.batchnorm_backward_naive(dout, ref_cache)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)


def test_batchnorm_running_statistics_follow_pytorch():
    # running = (1 - momentum) * running + momentum * batch (unbiased var)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((10, 4)) * 2 + 3
    mean, var = np.zeros(4), np.ones(4)
    K.batchnorm_forward(x, np.ones(4), np.zeros(4), mean, var, momentum=0.1)
    np.testing.assert_allclose(mean, 0.1 * x.mean(0))
    np.testing.assert_allclose(var, 0.9 + 0.1 * x.var(0, ddof=1))


def test_batchnorm_eval_uses_running_statistics():
    x = np.array([[1.0, 2.0], [3.0, 6.0]])
    mean, var = np.array([1.0, 2.0]), np.array([4.0, 16.0])
    out, cache = K.batchnorm_forward(x, np.array([2.0, 1.0]),
                                     np.array([0.5, 0.0]), mean, var,
                                     eps=0.0, training=False)
    np.testing.assert_allclose(out, [[0.5, 0.0], [2.5, 1.0]])
    assert cache is None
    np.testing.assert_array_equal(mean, [1.0, 2.0])   # not updated in eval


def test_float32_stays_float32():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = np.zeros(4, np.float32)
    out, cache = K.conv2d_forward(x, w, b)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in K.conv2d_backward(out, cache))
    out, cache = K.batchnorm_forward(out, np.ones(4, np.float32), b,
                                     np.zeros(4, np.float32),
                                     np.ones(4, np.float32))
    assert out.dtype == np.float32


def test_kernel_too_large_is_a_clear_error():
    with pytest.raises(ValueError, match="does not fit"):
        K.conv2d_forward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 5, 5)), None)
