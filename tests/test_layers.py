"""Every layer's backward pass against centred differences (float64), and
the behaviour around it: modes, running statistics, shapes, state."""
import numpy as np
import pytest

from nnlib import layers as L
from nnlib.gradcheck import assert_gradients_close, check_layer, check_model
from nnlib.losses import CrossEntropyLoss

F64 = dict(dtype=np.float64)


def rng():
    return np.random.default_rng(0)


def x_of(*shape):
    return np.random.default_rng(1).standard_normal(shape)


LAYERS = {
    "linear": (lambda: L.Linear(5, 3, rng=rng(), **F64), (4, 5)),
    "linear_nobias": (lambda: L.Linear(5, 3, bias=False, rng=rng(), **F64),
                      (4, 5)),
    "conv": (lambda: L.Conv2d(2, 3, 3, rng=rng(), **F64), (2, 2, 6, 6)),
    "conv_one_channel": (lambda: L.Conv2d(1, 4, 5, rng=rng(), **F64),
                         (2, 1, 8, 8)),
    "conv_stride_pad": (lambda: L.Conv2d(3, 2, 3, stride=2, padding=1,
                                         rng=rng(), **F64), (2, 3, 7, 7)),
    "conv_many_channels": (lambda: L.Conv2d(8, 2, 2, rng=rng(), **F64),
                           (2, 8, 4, 4)),
    "maxpool": (lambda: L.MaxPool2d(2), (2, 3, 6, 6)),
    "maxpool_overlap": (lambda: L.MaxPool2d(3, stride=2), (2, 2, 7, 7)),
    "batchnorm1d": (lambda: L.BatchNorm1d(4, **F64), (6, 4)),
    "batchnorm2d": (lambda: L.BatchNorm2d(3, **F64), (4, 3, 4, 4)),
    "relu": (lambda: L.ReLU(), (3, 7)),
    "tanh": (lambda: L.Tanh(), (3, 7)),
    "sigmoid": (lambda: L.Sigmoid(), (3, 7)),
    "flatten": (lambda: L.Flatten(), (2, 3, 2, 2)),
}


@pytest.mark.parametrize("name", LAYERS)
def test_layer_gradients(name):
    make, shape = LAYERS[name]
    layer = make()
    if isinstance(layer, L._BatchNorm):
        # non-trivial scale and shift, so that their gradients matter
        layer.weight.data[:] = np.linspace(0.5, 2.0, layer.num_features)
        layer.bias.data[:] = np.linspace(-1.0, 1.0, layer.num_features)
    errors = check_layer(layer, x_of(*shape), rng=rng(), verbose=False)
    assert set(errors) == {"dx"} | {n for n, _ in layer.named_parameters()}
    assert_gradients_close(errors, tol=1e-6)


def test_dropout_backward_uses_the_forward_mask():
    layer = L.Dropout(0.5, rng=rng())
    x = np.ones((50, 20))
    out = layer.forward(x)
    kept = out != 0
    assert 0.4 < kept.mean() < 0.6                  # about half kept
    np.testing.assert_allclose(out[kept], 2.0)       # inverted scaling
    dout = x_of(50, 20)
    np.testing.assert_allclose(layer.backward(dout), dout * kept * 2.0)
    layer.eval()
    assert layer.forward(x) is x


def small_cnn(bias):
    return L.Sequential(
        L.Conv2d(1, 2, 3, bias=bias, rng=rng(), **F64), L.BatchNorm2d(2, **F64),
        L.ReLU(), L.MaxPool2d(2), L.Flatten(),
        L.Linear(2 * 3 * 3, 3, rng=rng(), **F64))


def test_a_whole_cnn_with_its_loss():
    # no bias before BatchNorm: its gradient is exactly zero (see below),
    # and a relative error of two zeros means nothing
    model = small_cnn(bias=False)
    X = x_of(4, 1, 8, 8)
    y = np.array([0, 2, 1, 2])
    errors = check_model(model, CrossEntropyLoss(), X, y, verbose=False)
    assert len(errors) == 5
    assert_gradients_close(errors, tol=1e-6)


def test_a_bias_before_batchnorm_gets_no_gradient():
    # BatchNorm subtracts the channel mean, so a constant added before it
    # cannot change the loss
    model = small_cnn(bias=True)
    loss = CrossEntropyLoss()
    loss(model.forward(x_of(4, 1, 8, 8)), np.array([0, 2, 1, 2]))
    model.backward(loss.backward())
    assert np.abs(model[0].bias.grad).max() < 1e-12
    assert np.abs(model[0].weight.grad).max() > 1e-3


@pytest.mark.parametrize("size", [8, 9])     # the pool tiles 6x6, not 7x7
def test_a_first_convolution_its_batchnorm_and_pool_run_as_one_while_training(
        size):
    # fit's set-up (no input gradient, training mode) folds the first
    # BatchNorm and the max pool into the convolution; the loss, every
    # gradient and the running statistics are those of the layers run
    # apart, with flat regions in the images (tied maxima) too.
    x = x_of(6, 1, size, size)
    x[:3, :, :4, :] = 0.5
    y = np.array([0, 2, 1, 2, 0, 1])

    def run(model, fold):
        model.input_grad = not fold
        loss = CrossEntropyLoss()
        value = loss(model.forward(x), y)
        model.backward(loss.backward())
        return value, model.run_order()
    apart, folded = small_cnn(bias=True), small_cnn(bias=True)
    loss_apart, order_apart = run(apart, fold=False)
    loss_folded, order = run(folded, fold=True)
    assert isinstance(order[0], L.ConvBatchNorm) and len(order) == 4
    assert order[0].pool is folded[3]                  # the MaxPool2d
    assert not any(isinstance(layer, L.ConvBatchNorm)
                   for layer in order_apart)
    np.testing.assert_allclose(loss_folded, loss_apart, rtol=1e-12)
    for (name, p), q in zip(folded.named_parameters(), apart.parameters()):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-9, atol=1e-12,
                                   err_msg=name)
    for (name, a), b in zip(folded.named_buffers(),
                            (b for _, b in apart.named_buffers())):
        np.testing.assert_allclose(a, b, rtol=1e-12, err_msg=name)
    folded.eval()                        # running statistics: no fold
    assert not isinstance(folded.run_order()[0], L.ConvBatchNorm)


def test_sequential_can_skip_the_input_gradient():
    model = L.Sequential(L.Linear(4, 3, rng=rng(), **F64), L.ReLU(),
                         L.Linear(3, 2, rng=rng(), **F64))
    x, dout = x_of(5, 4), x_of(5, 2)
    model.forward(x)
    assert model.backward(dout).shape == x.shape
    grads = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    model.forward(x)
    model.input_grad = False            # the first layer's setting
    assert model[0].input_grad is False
    assert model.backward(dout) is None
    for before, p in zip(grads, model.parameters()):
        np.testing.assert_array_equal(before, p.grad)


def test_conv_can_skip_the_input_gradient():
    conv = L.Conv2d(2, 3, 3, rng=rng(), **F64)
    x = x_of(2, 2, 6, 6)
    dout = x_of(2, 3, 4, 4)
    conv.forward(x)
    assert conv.backward(dout).shape == x.shape
    dw = conv.weight.grad.copy()
    conv.zero_grad()
    conv.input_grad = False
    conv.forward(x)
    assert conv.backward(dout) is None
    np.testing.assert_array_equal(conv.weight.grad, dw)


@pytest.mark.parametrize("name", ["linear", "conv", "batchnorm2d"])
def test_two_backward_passes_give_twice_the_gradient(name):
    """Gradients accumulate, as in PyTorch: zero_grad() clears them."""
    make, shape = LAYERS[name]
    layer = make()
    x = x_of(*shape)
    dout = np.random.default_rng(2).standard_normal(layer.forward(x).shape)
    layer.backward(dout)
    once = {n: p.grad.copy() for n, p in layer.named_parameters()}
    assert all(np.abs(g).max() > 0 for g in once.values())
    layer.forward(x)
    layer.backward(dout)
    for n, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad, 2 * once[n], rtol=1e-12,
                                   err_msg=n)
    layer.zero_grad()
    assert not any(p.grad.any() for p in layer.parameters())


def test_a_model_accumulates_over_small_batches():
    """Gradient accumulation: the gradients of two halves of a batch,
    added up, are the gradient of the whole batch (a mean loss of each
    half counts half)."""
    model = L.Sequential(L.Linear(5, 4, rng=rng(), **F64), L.ReLU(),
                         L.Linear(4, 3, rng=rng(), **F64))
    X, y = x_of(6, 5), np.array([0, 1, 2, 0, 1, 2])
    loss = CrossEntropyLoss()
    loss(model.forward(X), y)
    model.backward(loss.backward())
    whole = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    for half in (slice(0, 3), slice(3, 6)):
        loss(model.forward(X[half]), y[half])
        model.backward(loss.backward() / 2)
    for g, p in zip(whole, model.parameters()):
        np.testing.assert_allclose(p.grad, g, rtol=1e-10, atol=1e-14)


def test_parameter_shapes_follow_pytorch():
    conv = L.Conv2d(3, 8, 5, rng=rng())
    lin = L.Linear(784, 10, rng=rng())
    assert conv.weight.shape == (8, 3, 5, 5) and conv.bias.shape == (8,)
    assert lin.weight.shape == (10, 784)
    assert conv.weight.data.dtype == np.float32         # the default
    out = conv(np.zeros((2, 3, 28, 28), np.float32))
    assert out.shape == (2, 8, 24, 24) and out.dtype == np.float32


@pytest.mark.parametrize("layer,x,message", [
    (L.Linear(784, 10, rng=rng()), np.zeros((2, 28, 28)),
     r"Linear\(784, 10\): expected input of shape \(N, 784\), "
     r"got \(2, 28, 28\)"),
    (L.Conv2d(1, 16, 5, rng=rng()), np.zeros((2, 3, 28, 28)),
     r"Conv2d\(1, 16, kernel_size=5\): expected input of shape "
     r"\(N, 1, H, W\), got \(2, 3, 28, 28\)"),
    (L.BatchNorm2d(16), np.zeros((2, 16)),
     r"BatchNorm2d\(16.*\): expected input of shape \(N, 16, H, W\), "
     r"got \(2, 16\)"),
])
def test_shape_errors_name_the_layer_and_both_shapes(layer, x, message):
    with pytest.raises(L.ShapeError, match=message):
        layer.forward(x)


def test_batchnorm_modes_and_running_statistics():
    bn = L.BatchNorm2d(3, momentum=0.1, **F64)
    x = x_of(8, 3, 4, 4) * 2 + 5
    out = bn.forward(x)
    # training: each channel of the output has mean 0 and variance 1
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, atol=1e-4)
    batch_mean = x.mean(axis=(0, 2, 3))
    batch_var = x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean, 0.1 * batch_mean)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * batch_var)
    # evaluation: the running statistics are used and left alone
    bn.eval()
    before = bn.running_mean.copy()
    out = bn.forward(x)
    expected = (x - bn.running_mean.reshape(1, 3, 1, 1)) / np.sqrt(
        bn.running_var.reshape(1, 3, 1, 1) + bn.eps)
    np.testing.assert_allclose(out, expected)
    np.testing.assert_array_equal(bn.running_mean, before)


def test_train_and_eval_reach_every_layer():
    model = L.Sequential(L.Linear(2, 2, rng=rng()), L.BatchNorm1d(2),
                         L.Dropout(0.1, rng=rng()))
    model.eval()
    assert not any(layer.training for layer in model)
    model.train()
    assert all(layer.training for layer in model)


def test_state_dict_round_trip_and_mismatch():
    def make(width):
        return L.Sequential(L.Linear(4, width, rng=np.random.default_rng(width)),
                            L.BatchNorm1d(width))
    a, b = make(3), make(3)
    a[1].running_mean[:] = 7
    b.load_state_dict(a.state_dict())
    for (name, x), (_, y) in zip(a.state_dict().items(),
                                 b.state_dict().items()):
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert set(a.state_dict()) == {"0.weight", "0.bias", "1.weight",
                                   "1.bias", "1.running_mean",
                                   "1.running_var"}
    with pytest.raises(L.ShapeError, match="0.weight"):
        make(5).load_state_dict(a.state_dict())


def test_load_state_dict_checks_every_array_before_copying_any():
    source = L.Sequential(L.Linear(4, 3, rng=np.random.default_rng(1)),
                          L.BatchNorm1d(3))
    target = L.Sequential(L.Linear(4, 3, rng=np.random.default_rng(2)),
                          L.BatchNorm1d(3))
    state = source.state_dict()
    state["1.running_var"] = np.ones(5, np.float32)   # a later key is wrong
    before = target.state_dict()
    with pytest.raises(L.ShapeError, match="1.running_var"):
        target.load_state_dict(state)
    for name, array in target.state_dict().items():
        np.testing.assert_array_equal(array, before[name], err_msg=name)


def test_sequential_pools_before_a_relu_with_the_same_numbers():
    model = small_cnn(bias=True)
    order = model.run_order()
    assert isinstance(order[2], L.MaxPool2d) and isinstance(order[3], L.ReLU)
    x = x_of(4, 1, 8, 8)
    listed = x
    for layer in model.layers:            # ReLU, then pool, as written
        listed = layer.forward(listed)
    np.testing.assert_array_equal(model.forward(x), listed)


@pytest.mark.parametrize("make", [lambda **kw: L.Linear(4, 3, **kw),
                                  lambda **kw: L.Conv2d(1, 2, 3, **kw),
                                  lambda **kw: L.Dropout(0.5, **kw)])
def test_layers_that_draw_random_numbers_refuse_a_missing_generator(make):
    # the same rule as nnlib.init and nnlib.data: no silent unseeded draws
    for rng in (None, 0):
        with pytest.raises(TypeError, match=r"rng=np\.random\.default_rng"):
            make(rng=rng)
