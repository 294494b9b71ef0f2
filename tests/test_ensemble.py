"""Ensembles and test-time augmentation: averages of softmax outputs,
checked against loops and hand-worked values."""
import numpy as np
import pytest

from nnlib import layers as L
from nnlib.augment import shift_rotate
from nnlib.ensemble import (ONE_PIXEL_SHIFTS, member_probabilities,
                            predict_proba)
from nnlib.losses import softmax
from nnlib.train import predict


def linear_model(weight, bias=None):
    """Flatten, then a Linear layer with the given weights."""
    weight = np.asarray(weight, dtype=np.float64)
    layer = L.Linear(weight.shape[1], weight.shape[0], dtype=np.float64,
                     rng=np.random.default_rng(0))
    layer.weight.data[...] = weight
    layer.bias.data[...] = 0.0 if bias is None else bias
    return L.Sequential(L.Flatten(), layer)


def test_no_shift_is_the_softmax_of_predict():
    rng = np.random.default_rng(0)
    X = rng.random((7, 1, 4, 4))
    model = linear_model(rng.standard_normal((3, 16)))
    np.testing.assert_allclose(predict_proba(model, X),
                               softmax(predict(model, X)), atol=1e-12)


def test_shifts_average_the_shifted_copies():
    rng = np.random.default_rng(1)
    X = rng.random((5, 1, 6, 6))
    X[..., 0, :] = X[..., -1, :] = X[..., :, 0] = X[..., :, -1] = 0
    model = linear_model(rng.standard_normal((4, 36)))
    expected = np.mean([softmax(predict(model, shift_rotate(X, 0.0, s)))
                        for s in ONE_PIXEL_SHIFTS], axis=0)
    np.testing.assert_allclose(predict_proba(model, X, ONE_PIXEL_SHIFTS),
                               expected, atol=1e-12)


def test_two_members_by_hand():
    # one pixel, value 1; logits (log 3, 0) and (0, log 3): softmax
    # (3/4, 1/4) and (1/4, 3/4); the members disagree, the mean is (1/2, 1/2)
    X = np.ones((1, 1, 1, 1))
    a = linear_model([[np.log(3)], [0.0]])
    b = linear_model([[0.0], [np.log(3)]])
    p = member_probabilities([a, b], X)
    assert p.shape == (2, 1, 2)
    np.testing.assert_allclose(p[:, 0], [[0.75, 0.25], [0.25, 0.75]])
    np.testing.assert_allclose(p.mean(axis=0), [[0.5, 0.5]])
    with pytest.raises(ValueError, match="at least one"):
        member_probabilities([], X)
    with pytest.raises(ValueError, match="at least one"):
        predict_proba(a, X, shifts=())
