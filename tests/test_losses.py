"""Softmax, log-softmax and the cross-entropy loss."""
import numpy as np
import pytest

from nnlib.gradcheck import numerical_gradient, rel_error
from nnlib.losses import CrossEntropyLoss, log_softmax, softmax

# log(e^1 + e^2 + e^3) = 3 + log(e^-2 + e^-1 + 1) = 3 + log(1.5032147)
LOGSUMEXP_123 = 3.40760596444438


def test_softmax_rows_are_probabilities():
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    p = softmax(z)
    np.testing.assert_allclose(p.sum(axis=1), [1.0, 1.0])
    np.testing.assert_allclose(p[1], [1 / 3] * 3)
    np.testing.assert_allclose(p[0], np.exp(z[0] - LOGSUMEXP_123))
    np.testing.assert_allclose(log_softmax(z), np.log(p))


def test_softmax_of_huge_logits_does_not_overflow():
    z = np.array([[1e4, 0.0, -1e4]], np.float32)
    with np.errstate(over="raise", invalid="raise"):  # no inf, no NaN
        np.testing.assert_array_equal(softmax(z), [[1.0, 0.0, 0.0]])
        logp = log_softmax(z)
    np.testing.assert_allclose(logp, [[0.0, -1e4, -2e4]])


def test_loss_value_by_hand():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    # row 0, label 2: -log softmax = LOGSUMEXP_123 - 3 = 0.40760596
    # row 1, label 0: three equal logits, -log(1/3) = log 3 = 1.09861229
    # mean: (0.40760596 + 1.09861229) / 2 = 0.75310912
    loss = CrossEntropyLoss()(logits, np.array([2, 0]))
    assert isinstance(loss, float)
    assert loss == pytest.approx(0.75310912, abs=1e-8)


def test_label_smoothing_value_by_hand():
    # eps = 0.3, C = 3: target = 0.7 * onehot(2) + 0.1 = [0.1, 0.1, 0.8]
    # -log softmax([1, 2, 3]) = [2.40760596, 1.40760596, 0.40760596]
    # loss = 0.1 * 2.40760596 + 0.1 * 1.40760596 + 0.8 * 0.40760596
    #      = 0.70760596
    loss = CrossEntropyLoss(label_smoothing=0.3)(np.array([[1.0, 2, 3]]),
                                                 np.array([2]))
    assert loss == pytest.approx(0.70760596, abs=1e-8)


def test_huge_logits_give_finite_loss_and_gradient():
    loss_fn = CrossEntropyLoss()
    logits = np.array([[1e4, 0.0, -1e4]], np.float32)
    assert loss_fn(logits, np.array([0])) == 0.0
    # the wrong class by a margin of 1e4: loss = 1e4 - 0
    assert loss_fn(logits, np.array([1])) == pytest.approx(1e4)
    np.testing.assert_allclose(loss_fn.backward(), [[1.0, -1.0, 0.0]])


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_gradient_matches_centred_differences(eps):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 4)) * 3
    y = rng.integers(0, 4, size=5)
    loss_fn = CrossEntropyLoss(label_smoothing=eps)
    loss_fn(logits, y)
    analytic = loss_fn.backward()
    numeric = numerical_gradient(lambda z: loss_fn(z, y), logits)
    assert rel_error(analytic, numeric) < 1e-6


def test_backward_keeps_the_dtype_and_shape_of_the_logits():
    loss_fn = CrossEntropyLoss()
    logits = np.zeros((3, 10), np.float32)
    loss_fn(logits, np.array([1, 2, 3]))
    dlogits = loss_fn.backward()
    assert dlogits.dtype == np.float32 and dlogits.shape == (3, 10)
    # uniform probabilities 0.1, minus the one-hot target, over N = 3
    assert dlogits[0, 1] == pytest.approx((0.1 - 1) / 3)
    assert dlogits[0, 0] == pytest.approx(0.1 / 3)


@pytest.mark.parametrize("logits, y, match", [
    (np.zeros((4, 3)), np.array([0, 1, 2]), r"labels of shape \(4,\)"),
    (np.zeros((2, 3)), np.array([0, 3]), r"in \[0, 3\)"),
    (np.zeros((2, 3)), np.array([-1, 0]), r"in \[0, 3\)"),
    (np.zeros(3), np.array([0]), "2-D array"),
    (np.zeros((0, 3)), np.zeros(0, int), "empty"),
])
def test_bad_shapes_and_labels_are_named(logits, y, match):
    with pytest.raises(ValueError, match=match):
        CrossEntropyLoss()(logits, y)


def test_float_labels_are_rejected():
    with pytest.raises(TypeError, match="integer class indices"):
        CrossEntropyLoss()(np.zeros((2, 3)), np.array([0.0, 1.0]))


def test_backward_before_forward_is_an_error():
    with pytest.raises(RuntimeError, match="before backward"):
        CrossEntropyLoss().backward()


def test_label_smoothing_out_of_range():
    with pytest.raises(ValueError, match="label_smoothing"):
        CrossEntropyLoss(label_smoothing=1.5)
