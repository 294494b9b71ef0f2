"""The book's networks: their layers, shapes and reproducibility."""
import numpy as np
import pytest

from nnlib.layers import BatchNorm1d, BatchNorm2d, Linear, ReLU, Tanh
from nnlib.models import mlp, seed_cnn


def test_mlp_layers_and_shapes():
    model = mlp(rng=np.random.default_rng(0))
    assert [type(layer) for layer in model] == [Linear, ReLU, Linear, ReLU,
                                                Linear]
    assert [p.shape for p in model.parameters()] == [
        (256, 784), (256,), (64, 256), (64,), (10, 64), (10,)]
    out = model(np.zeros((3, 784), np.float32))
    assert out.shape == (3, 10) and out.dtype == np.float32


def test_mlp_options():
    model = mlp((5, 4, 3, 2), rng=np.random.default_rng(0),
                activation="tanh", batchnorm=True, dtype=np.float64)
    assert [type(layer) for layer in model] == [
        Linear, BatchNorm1d, Tanh, Linear, BatchNorm1d, Tanh, Linear]
    assert all(p.data.dtype == np.float64 for p in model.parameters())
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        mlp(rng=np.random.default_rng(0), activation="gelu")
    with pytest.raises(ValueError, match="at least the input and output"):
        mlp((784,), rng=np.random.default_rng(0))


def test_init_is_passed_to_every_layer():
    he = mlp(rng=np.random.default_rng(0))
    normal = mlp(rng=np.random.default_rng(0), init="normal")
    # He: std sqrt(2 / 784) = 0.05; N(0, 1): std 1
    assert he[0].weight.data.std() == pytest.approx(np.sqrt(2 / 784), rel=0.02)
    assert normal[0].weight.data.std() == pytest.approx(1, rel=0.02)


@pytest.mark.parametrize("batchnorm, count", [(True, 10), (False, 8)])
def test_seed_cnn_shapes(batchnorm, count):
    model = seed_cnn(rng=np.random.default_rng(0), batchnorm=batchnorm)
    assert len(model) == count
    assert any(isinstance(layer, BatchNorm2d) for layer in model) == batchnorm
    x = np.random.default_rng(1).standard_normal((2, 1, 28, 28))
    out = model(x.astype(np.float32))
    assert out.shape == (2, 10) and out.dtype == np.float32
    assert model[-1].weight.shape == (10, 512)


@pytest.mark.parametrize("build", [mlp, seed_cnn])
def test_same_seed_same_network(build):
    a = build(rng=np.random.default_rng(3)).state_dict()
    b = build(rng=np.random.default_rng(3)).state_dict()
    c = build(rng=np.random.default_rng(4)).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)
    # each layer draws fresh numbers: a seed passed to every layer would
    # give them the same normal numbers, perfectly correlated
    first, second = [v.ravel()[:50] for k, v in a.items()
                     if k.endswith("weight") and v.ndim > 1][:2]
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.9


def test_a_seed_is_not_a_generator():
    with pytest.raises(TypeError, match="default_rng"):
        mlp(rng=0)
