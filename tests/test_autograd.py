"""The autograd: every operation against centred differences (float64),
and whole models against nnlib's hand-written backward passes."""
import numpy as np
import pytest

from nnlib import autograd as ag
from nnlib import models
from nnlib.gradcheck import numerical_gradient, rel_error
from nnlib.losses import CrossEntropyLoss

TOL = 1e-7


def check(f, *shapes, seed=0, positive=False):
    """rel_error of backward against centred differences for each input of
    the scalar sum(f(*inputs) * weights), with random float64 inputs."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in shapes]
    if positive:
        arrays = [np.abs(a) + 0.5 for a in arrays]
    inputs = [ag.Tensor(a, requires_grad=True) for a in arrays]
    out = f(*inputs)
    weights = rng.standard_normal(out.shape)
    (out * weights).sum().backward()

    def value(_):
        return float(np.sum(f(*map(ag.Tensor, arrays)).data * weights))
    errors = [rel_error(t.grad, numerical_gradient(value, a))
              for t, a in zip(inputs, arrays)]
    assert max(errors) < TOL, errors
    return errors


@pytest.mark.parametrize("name, f, shapes", [
    ("add, broadcast rows", lambda a, b: a + b, [(4, 3), (3,)]),
    ("add, broadcast columns", lambda a, b: a + b, [(4, 3), (4, 1)]),
    ("sub, broadcast 4-D", lambda a, b: a - b, [(2, 3, 4, 4), (1, 3, 1, 1)]),
    ("mul, broadcast", lambda a, b: a * b, [(2, 3, 4), (3, 1)]),
    ("mul, same tensor twice", lambda a: a * a, [(3, 4)]),
    ("matmul", lambda a, b: a @ b, [(5, 4), (4, 3)]),
    ("matmul with T", lambda a, b: a @ b.T, [(5, 4), (3, 4)]),
    ("relu", lambda a: ag.relu(a), [(6, 5)]),
    ("reshape", lambda a: a.reshape(3, 8) * 2.0, [(2, 3, 4)]),
    ("sum over an axis", lambda a: a.sum(axis=1), [(4, 5)]),
    ("sum keepdims", lambda a: a.sum(axis=(0, 2), keepdims=True),
     [(2, 3, 4)]),
    ("mean", lambda a: a.mean(axis=0), [(4, 5)]),
    ("log_softmax", lambda a: ag.log_softmax(a), [(4, 10)]),
    ("conv2d", lambda x, w, b: ag.conv2d(x, w, b), [(2, 3, 7, 7),
                                                   (4, 3, 3, 3), (4,)]),
    ("conv2d, stride and padding",
     lambda x, w: ag.conv2d(x, w, stride=2, padding=1),
     [(2, 3, 7, 7), (4, 3, 3, 3)]),
    ("max_pool2d", lambda x: ag.max_pool2d(x, 2), [(2, 3, 6, 6)]),
])
def test_operation_gradients(name, f, shapes):
    check(f, *shapes)


def test_power_and_division():
    check(lambda a: a ** -0.5, (3, 4), positive=True)
    check(lambda a, b: a / b, (3, 4), (4,), positive=True)


def test_cross_entropy_gradient_and_value():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 10, size=6)
    check(lambda z: ag.cross_entropy(z, y), (6, 10))
    z = rng.standard_normal((6, 10)) * 5
    assert ag.cross_entropy(ag.Tensor(z), y).item() == pytest.approx(
        CrossEntropyLoss()(z, y), rel=1e-12)


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 5)])
def test_batch_norm_composed_of_primitives(shape):
    c = shape[1]

    def f(x, gamma, beta):
        return ag.batch_norm(x, gamma, beta, np.zeros(c), np.ones(c))
    check(f, shape, (c,), (c,))


def test_gradients_accumulate_until_cleared():
    w = ag.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (w * 3.0).sum().backward()
    (w * 3.0).sum().backward()
    np.testing.assert_array_equal(w.grad, [6.0, 6.0])
    ag.SGD([w], lr=0.1).zero_grad()
    assert w.grad is None


def test_a_value_used_twice_gets_both_gradients():
    x = ag.Tensor(np.array(3.0), requires_grad=True)
    y = x * x + x                       # dy/dx = 2x + 1
    y.backward()
    assert x.grad == 7.0
    assert [t.op for t in y.graph()] == ["", "*", "+"]


def test_no_grad_records_nothing():
    w = ag.Tensor(np.ones(3), requires_grad=True)
    with ag.no_grad():
        out = (w * 2.0).sum()
    assert not out.requires_grad and out.is_leaf
    assert (w * 2.0).sum().requires_grad


def test_float32_stays_float32():
    x = ag.Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    out = ((-x * 2.0 + 1) / 3.0) ** 2
    out.mean().backward()
    assert out.dtype == np.float32 and x.grad.dtype == np.float32


def test_backward_of_a_non_scalar_needs_a_gradient():
    x = ag.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2.0).backward()


def test_backward_from_a_gradient_is_the_weighted_sum():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 3))
    w = rng.standard_normal((4, 2))
    grads = []
    for start in ("weighted sum", "gradient"):
        x = ag.Tensor(a.copy(), requires_grad=True)
        out = ag.relu(x @ ag.Tensor(np.ones((3, 2))))
        if start == "weighted sum":
            (out * w).sum().backward()
        else:
            out.backward(w)
        grads.append(x.grad)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        out.backward(np.ones(3))


def test_detach_shares_the_values_and_stops_the_gradient():
    x = ag.Tensor(np.array([3.0, -2.0]), requires_grad=True)
    d = (x * 2.0).detach()
    assert d.is_leaf and not d.requires_grad
    np.testing.assert_array_equal(d.data, [6.0, -4.0])
    assert x.detach().data is x.data           # no copy, as in PyTorch
    (x * x.detach()).sum().backward()          # one factor is a constant
    np.testing.assert_array_equal(x.grad, [3.0, -2.0])
    x.grad = None
    (x * x).sum().backward()                   # both factors: 2x
    np.testing.assert_array_equal(x.grad, [6.0, -4.0])


def grads_of_both(model, X, y):
    """nnlib's gradients and the autograd twin's, by parameter name."""
    twin = ag.from_nnlib(model)
    loss_fn = CrossEntropyLoss()
    loss = loss_fn(model.forward(X), y)
    model.backward(loss_fn.backward())
    ag_loss = ag.cross_entropy(twin(ag.Tensor(X)), y)
    ag_loss.backward()
    mine = dict(twin.named_parameters())
    assert set(mine) == {n for n, _ in model.named_parameters()}
    return loss, ag_loss.item(), {n: (p.grad, mine[n].grad)
                                  for n, p in model.named_parameters()}


def test_mlp_gradients_equal_nnlib():
    rng = np.random.default_rng(0)
    model = models.mlp(rng=rng, dtype=np.float64)
    X, y = rng.standard_normal((16, 784)), rng.integers(0, 10, 16)
    loss, ag_loss, grads = grads_of_both(model, X, y)
    assert ag_loss == pytest.approx(loss, rel=1e-12)
    for name, (a, b) in grads.items():
        assert rel_error(a, b) < 1e-12, name


def test_cnn_gradients_equal_nnlib_and_running_statistics():
    rng = np.random.default_rng(0)
    model = models.seed_cnn(rng=rng, dtype=np.float64)
    X, y = rng.standard_normal((8, 1, 28, 28)), rng.integers(0, 10, 8)
    twin = ag.from_nnlib(model)
    loss, ag_loss, grads = grads_of_both(model, X, y)
    assert ag_loss == pytest.approx(loss, rel=1e-10)
    for name, (a, b) in grads.items():
        if name.endswith(("0.bias", "4.bias")):   # zero: BatchNorm follows
            assert np.abs(b).max() < 1e-12, name
        else:
            assert rel_error(a, b) < 1e-9, name
    twin(ag.Tensor(X))                  # the twin's own first step
    np.testing.assert_allclose(twin.layers[1].running_mean,
                               model[1].running_mean, rtol=1e-10)
    np.testing.assert_allclose(twin.layers[1].running_var,
                               model[1].running_var, rtol=1e-10)


def test_eval_mode_matches_nnlib():
    rng = np.random.default_rng(0)
    model = models.seed_cnn(rng=rng, dtype=np.float64)
    model(rng.standard_normal((8, 1, 28, 28)))     # running statistics
    twin = ag.from_nnlib(model).eval()
    model.eval()
    X = rng.standard_normal((4, 1, 28, 28))
    with ag.no_grad():
        out = twin(ag.Tensor(X))
    assert not out.requires_grad
    np.testing.assert_allclose(out.data, model(X), rtol=1e-10, atol=1e-12)


def test_sgd_matches_nnlib_sgd():
    from nnlib import optim
    from nnlib.layers import Parameter
    rng = np.random.default_rng(0)
    w0, grads = rng.standard_normal(5), rng.standard_normal((3, 5))
    p, t = Parameter(w0.copy()), ag.Tensor(w0.copy(), requires_grad=True)
    ours = ag.SGD([t], lr=0.1, momentum=0.9)
    theirs = optim.SGD([p], lr=0.1, momentum=0.9)
    for g in grads:
        p.grad[...], t.grad = g, g.copy()
        ours.step()
        theirs.step()
    np.testing.assert_array_equal(t.data, p.data)


def test_from_nnlib_refuses_an_unknown_layer():
    from nnlib.layers import Sequential, Tanh
    with pytest.raises(TypeError, match="Tanh"):
        ag.from_nnlib(Sequential(Tanh()))
