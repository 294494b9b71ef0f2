"""The gradient checker itself: it must pass right gradients and catch
wrong ones."""
import numpy as np
import pytest

from nnlib.gradcheck import (assert_gradients_close, check_layer,
                             check_model, numerical_gradient, rel_error)
from nnlib.layers import Linear, ReLU, Sequential
from nnlib.losses import CrossEntropyLoss

F64 = np.float64


def test_numerical_gradient_of_a_cube_and_x_is_restored():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    before = x.copy()
    grad = numerical_gradient(lambda z: float(np.sum(z ** 3)), x)
    np.testing.assert_allclose(grad, 3 * before ** 2, rtol=1e-8)
    np.testing.assert_array_equal(x, before)


def test_float32_is_refused_with_a_reason():
    with pytest.raises(TypeError, match="need float64.*dtype=np.float64"):
        numerical_gradient(np.sum, np.zeros(3, np.float32))
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="float64"):
        check_layer(Linear(2, 2, rng=rng), np.zeros((1, 2)), rng=rng)


def test_rel_error():
    a = np.array([1.0, -2.0])
    assert rel_error(a, a) == 0.0
    assert rel_error(a, -a) == 1.0
    assert rel_error(a, a + [0.0, 4e-6]) == pytest.approx(1e-6)
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    with pytest.raises(ValueError, match="shapes"):
        rel_error(np.zeros(2), np.zeros(3))


def test_check_layer_passes_a_correct_layer(capsys):
    rng = np.random.default_rng(0)
    layer = Linear(4, 3, rng=rng, dtype=F64)
    errors = check_layer(layer, rng.standard_normal((5, 4)), rng=rng)
    assert set(errors) == {"dx", "weight", "bias"}
    assert_gradients_close(errors, tol=1e-8)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("Linear(4, 3)  dx")


class SummedBiasLinear(Linear):
    """The seed's bug: the bias gradient summed into one number."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.bias.grad[...] = dout.sum()
        return dx


def test_check_layer_catches_a_wrong_bias_gradient():
    rng = np.random.default_rng(0)
    layer = SummedBiasLinear(4, 3, rng=rng, dtype=F64)
    errors = check_layer(layer, rng.standard_normal((5, 4)), rng=rng,
                         verbose=False)
    assert errors["dx"] < 1e-8 and errors["weight"] < 1e-8
    assert errors["bias"] > 0.1
    with pytest.raises(AssertionError, match=r"bias: \d"):
        assert_gradients_close(errors)


def test_check_model_with_the_loss():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(6, 5, rng=rng, dtype=F64), ReLU(),
                       Linear(5, 3, rng=rng, dtype=F64))
    X, y = rng.standard_normal((8, 6)), rng.integers(0, 3, size=8)
    loss_fn = CrossEntropyLoss(label_smoothing=0.1)
    errors = check_model(model, loss_fn, X, y, verbose=False)
    assert set(errors) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert_gradients_close(errors)
    sampled = check_model(model, loss_fn, X, y, rng=rng, num_checks=4,
                          verbose=False)
    assert_gradients_close(sampled)


def test_sampled_checks_need_a_generator():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(2, 2, rng=rng, dtype=F64))
    with pytest.raises(TypeError, match="default_rng"):
        check_model(model, CrossEntropyLoss(), np.zeros((1, 2)),
                    np.array([0]), num_checks=2)


def test_check_layer_ignores_gradients_from_earlier_passes():
    # backward adds to .grad, so the check must start from zero
    rng = np.random.default_rng(0)
    layer = Linear(4, 3, rng=rng, dtype=F64)
    x = rng.standard_normal((5, 4))
    layer.forward(x)
    layer.backward(rng.standard_normal((5, 3)))        # leaves gradients
    errors = check_layer(layer, x, rng=rng, verbose=False)
    assert_gradients_close(errors, tol=1e-8)
