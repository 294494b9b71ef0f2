"""The compiled forward pass gives exactly the numbers of model.forward."""
import numpy as np
import pytest

from nnlib import models
from nnlib.inference import compile_forward
from nnlib.layers import (BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten,
                          Linear, MaxPool2d, Module, ReLU, Sequential,
                          Sigmoid, Tanh)
from nnlib.train import predict


def randomise_batchnorm(model, rng, negative_gamma=False):
    """Running statistics and affine parameters as after training."""
    for layer in model:
        if isinstance(layer, (BatchNorm1d, BatchNorm2d)):
            c = layer.num_features
            layer.running_mean[:] = rng.normal(0, 0.5, c)
            layer.running_var[:] = rng.uniform(0.2, 3, c)
            layer.weight.data[:] = rng.uniform(0.5, 1.5, c)
            layer.bias.data[:] = rng.normal(0, 0.3, c)
            if negative_gamma:
                layer.weight.data[::3] *= -1
    return model


def reference(model, x):
    model.eval()
    out = model.forward(x)
    model.train()
    return out


def images(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 28, 28)).astype(np.float32)


@pytest.mark.parametrize("batchnorm", [True, False])
def test_the_book_cnn_gives_exactly_the_layers_numbers(batchnorm):
    rng = np.random.default_rng(1)
    model = randomise_batchnorm(
        models.seed_cnn(rng=rng, batchnorm=batchnorm), rng)
    for conv in (model[0], model[4 if batchnorm else 3]):
        conv.bias.data[:] = rng.normal(0, 0.5, conv.out_channels)
    x = images(37)
    np.testing.assert_array_equal(compile_forward(model)(x),
                                  reference(model, x))


def test_pooling_moves_before_bias_batchnorm_and_relu():
    model = models.seed_cnn(rng=np.random.default_rng(0))
    names = [s.name for s in compile_forward(model).steps]
    assert names == ["convolution", "max pool", "conv bias", "batchnorm",
                     "relu"] * 2 + ["flatten", "linear"]


def test_a_batchnorm_with_a_negative_scale_stays_before_the_pool():
    rng = np.random.default_rng(2)
    model = randomise_batchnorm(models.seed_cnn(rng=rng), rng,
                                negative_gamma=True)
    forward = compile_forward(model)
    names = [s.name for s in forward.steps]
    # max(-a, -b) is not -max(a, b): the pool waits until after BatchNorm
    assert names[:5] == ["convolution", "conv bias", "batchnorm",
                         "max pool", "relu"]
    x = images(9)
    np.testing.assert_array_equal(forward(x), reference(model, x))


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_mlps_with_and_without_batchnorm(activation):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 784)).astype(np.float32)
    for batchnorm in (False, True):
        model = randomise_batchnorm(models.mlp(
            rng=rng, activation=activation, batchnorm=batchnorm), rng)
        np.testing.assert_array_equal(compile_forward(model)(x),
                                      reference(model, x))


def test_the_callers_array_is_never_written_to():
    rng = np.random.default_rng(4)
    # in-place steps first: they must work on a copy of the input
    model = randomise_batchnorm(Sequential(
        BatchNorm2d(1), ReLU(), Conv2d(1, 4, 3, rng=rng), ReLU(),
        MaxPool2d(2), Flatten(), ReLU(), Linear(4 * 13 * 13, 3, rng=rng)),
        rng)
    x = images(6)
    kept = x.copy()
    out = compile_forward(model)(x)
    np.testing.assert_array_equal(x, kept)
    np.testing.assert_array_equal(out, reference(model, x))
    flat = rng.standard_normal((5, 8)).astype(np.float32)
    kept = flat.copy()
    compile_forward(Sequential(ReLU(), Dropout(0.5, rng=rng), Tanh(), Sigmoid()))(flat)
    np.testing.assert_array_equal(flat, kept)


def test_it_is_a_snapshot_of_the_weights():
    model = models.seed_cnn(rng=np.random.default_rng(5))
    x = images(4)
    forward = compile_forward(model)
    before = forward(x)
    for p in model.parameters():
        p.data += 1
    np.testing.assert_array_equal(forward(x), before)
    assert not np.array_equal(compile_forward(model)(x), before)


class Double(Module):
    """A layer the compiler does not know."""

    def forward(self, x):
        self.last = x
        return 2 * x


def test_an_unknown_layer_runs_its_own_forward_on_one_thread():
    rng = np.random.default_rng(6)
    model = Sequential(Linear(8, 8, rng=rng), Double(), ReLU(),
                       Linear(8, 2, rng=rng))
    forward = compile_forward(model)
    assert not forward.thread_safe
    x = rng.standard_normal((40, 8)).astype(np.float32)
    expected = np.concatenate([reference(model, x[i:i + 7])
                               for i in range(0, 40, 7)])
    np.testing.assert_array_equal(predict(model, x, batch_size=7, workers=2),
                                  expected)


def test_predict_in_threads_is_the_compiled_forward_of_each_batch():
    rng = np.random.default_rng(7)
    model = randomise_batchnorm(models.seed_cnn(rng=rng), rng)
    x = images(70)
    forward = compile_forward(model)
    expected = np.concatenate([forward(x[i:i + 16]) for i in range(0, 70, 16)])
    got = predict(model, x, batch_size=16, workers=2)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(
        predict(model, x, batch_size=16, workers=2), got)
