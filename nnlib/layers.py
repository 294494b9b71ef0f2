"""Layers: thin classes that hold parameters and call the kernels.

Every layer has ``forward(x)`` and ``backward(dout)``; ``backward`` adds the
gradients of the layer's parameters to ``param.grad`` and returns the
gradient with respect to the layer's input. As in PyTorch, gradients
*accumulate*: two backward passes give the sum of their gradients, and
``zero_grad()`` (of the model or of the optimiser) sets them back to zero
before the next step. Shapes follow PyTorch: images
are (N, C, H, W), ``Conv2d.weight`` is (out_channels, in_channels, kH, kW),
``Linear.weight`` is (out_features, in_features).

4-D activations are *channels-last in memory*: an (N, C, H, W) array whose
bytes are laid out as (N, H, W, C), exactly PyTorch's ``channels_last``
memory format. The kernels work on that layout without copying, and the
shape a reader sees is still (N, C, H, W). The layers call
``nnlib.fast_kernels``; ``nnlib.kernels`` holds the same computations as
chapter 4 writes them.
"""
from __future__ import annotations

import numpy as np

from . import fast_kernels as fast
from . import init as initializers
from .inference import Output, Step
from .init import _check_rng
from .kernels import batchnorm_eval_affine
from .layout import rows_view


class ShapeError(ValueError):
    """An input whose shape does not fit the layer it is given to."""


class Parameter:
    """A trainable array and the gradient of the loss with respect to it.

    ``grad`` starts at zero; each backward pass adds to it.
    """

    def __init__(self, data):
        self.data = data
        self.grad = np.zeros_like(data)

    @property
    def shape(self):
        return self.data.shape

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class: parameters, buffers, and the training/evaluation switch.

    ``input_grad``: whether ``backward`` computes the gradient with respect
    to the layer's input. Set it to False on a model whose input is the
    data (``fit`` does, while it trains): the first layer then skips that
    work and ``backward`` returns None. For a ``Sequential`` it is its
    first layer's setting.
    """

    training = True
    input_grad = True
    # Element-wise and never decreasing (ReLU): a max pool right after it
    # may run first, on fewer values, with the same result.
    monotone = False
    is_max_pool = False
    # BatchNorm2d: a convolution right before it may fold it into its
    # matrix product (Conv2d.fused_with).
    folds_into_convolution = False
    # Its output is worth a look as feature maps (plots.feature_maps shows
    # the activations and pools by default).
    shows_features = False

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def inference_steps(self):
        """This layer's evaluation-mode forward pass as steps for
        ``nnlib.inference.compile_forward``, holding copies of its weights.
        By default, one step that calls the layer's own ``forward`` (which
        makes the compiled pass not thread-safe); a layer overrides it to
        say what it computes."""
        return [Step(f"forward of {self!r}", self.forward,
                     output=Output.UNKNOWN)]

    def __call__(self, x):
        return self.forward(x)

    def fused_with(self, following):
        """A module that runs this layer and ``following`` as one, for
        ``Sequential.run_order``; None (the default) runs them apart."""
        return None

    # -- parameters and buffers -------------------------------------------
    def _children(self):
        return []

    def named_parameters(self, prefix=""):
        out = [(prefix + k, v) for k, v in vars(self).items()
               if isinstance(v, Parameter)]
        for name, child in self._children():
            out += child.named_parameters(f"{prefix}{name}.")
        return out

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    _buffer_names: tuple = ()

    def named_buffers(self, prefix=""):
        out = [(prefix + k, getattr(self, k)) for k in self._buffer_names]
        for name, child in self._children():
            out += child.named_buffers(f"{prefix}{name}.")
        return out

    def zero_grad(self):
        """Set every parameter's gradient to zero, before a new step."""
        for p in self.parameters():
            p.grad[...] = 0

    def num_parameters(self):
        return sum(p.data.size for p in self.parameters())

    def train(self, mode=True):
        self.training = mode
        for _, child in self._children():
            child.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def state_dict(self):
        """Parameters and buffers by name, as copies (no pickle needed)."""
        d = {k: p.data.copy() for k, p in self.named_parameters()}
        d.update({k: b.copy() for k, b in self.named_buffers()})
        return d

    def load_state_dict(self, state):
        """Copy arrays into this model; a missing name or shape is an error."""
        own = dict(self.named_parameters())
        bufs = dict(self.named_buffers())
        expected = set(own) | set(bufs)
        missing, unexpected = expected - set(state), set(state) - expected
        if missing or unexpected:
            raise KeyError(
                f"state does not match {type(self).__name__}: missing "
                f"{sorted(missing)}, unexpected {sorted(unexpected)}")
        targets = {name: own[name].data if name in own else bufs[name]
                   for name in state}
        for name, target in targets.items():   # check all before copying any
            if target.shape != np.shape(state[name]):
                raise ShapeError(
                    f"{name}: the model has shape {target.shape}, the saved "
                    f"array has shape {np.shape(state[name])}; was it saved "
                    "from a model of another architecture?")
        for name, target in targets.items():
            target[...] = state[name]
        return self

    def extra_repr(self):
        return ""

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    def _check(self, x, ndim, axis=None, size=None, what=""):
        """Raise a ShapeError that names this layer, if ``x`` does not fit."""
        ok = x.ndim == ndim and (axis is None or x.shape[axis] == size)
        if not ok:
            raise ShapeError(f"{self!r}: expected input of shape {what}, "
                             f"got {tuple(x.shape)}")


# ---------------------------------------------------------------------------
# Fully connected
# ---------------------------------------------------------------------------
class Linear(Module):
    """y = x W^T + b, with x (N, in_features) and W (out_features, in_features)."""

    def __init__(self, in_features, out_features, bias=True, *, init="he",
                 rng=None, dtype=np.float32):
        self.in_features, self.out_features = in_features, out_features
        w = initializers.get(init)((out_features, in_features), _check_rng(rng),
                                   dtype=dtype)
        self.weight = Parameter(w)
        self.bias = Parameter(np.zeros(out_features, dtype)) if bias else None

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}"

    def forward(self, x):
        self._check(x, 2, 1, self.in_features, f"(N, {self.in_features})")
        self.x = x
        b = None if self.bias is None else self.bias.data
        return fast.linear_forward(x, self.weight.data, b)

    def backward(self, dout):
        dx, dw, db = fast.linear_backward(dout, self.x, self.weight.data,
                                          self.input_grad,
                                          self.bias is not None)
        self.weight.grad += dw
        if self.bias is not None:
            # a sum over the batch: one number per output unit
            self.bias.grad += db
        return dx

    def inference_steps(self):
        w = self.weight.data.copy()
        b = None if self.bias is None else self.bias.data.copy()
        return [Step("linear", lambda x: fast.linear_forward(x, w, b))]


# ---------------------------------------------------------------------------
# Convolution and pooling
# ---------------------------------------------------------------------------
class Conv2d(Module):
    """2-D convolution (cross-correlation, as in PyTorch), computed by im2col."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1,
                 padding=0, bias=True, *, init="he", rng=None,
                 dtype=np.float32):
        k = kernel_size
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = k, stride, padding
        w = initializers.get(init)((out_channels, in_channels, k, k),
                                   _check_rng(rng), dtype=dtype)
        self.weight = Parameter(w)
        self.bias = Parameter(np.zeros(out_channels, dtype)) if bias else None

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, " \
            f"kernel_size={self.kernel_size}"
        if self.stride != 1:
            s += f", stride={self.stride}"
        if self.padding:
            s += f", padding={self.padding}"
        return s

    def forward(self, x):
        self._check(x, 4, 1, self.in_channels,
                    f"(N, {self.in_channels}, H, W)")
        b = None if self.bias is None else self.bias.data
        out, self.cache = fast.conv2d_forward(
            x, self.weight.data, b, self.stride, self.padding)
        return out

    def backward(self, dout):
        dx, dw, db = fast.conv2d_backward(dout, self.cache, self.input_grad)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def fused_with(self, following):
        """While this convolution passes no gradient back (the model's
        first layer, as ``fit`` trains), a BatchNorm right after it in
        training mode runs inside its matrix product: ``ConvBatchNorm``."""
        if following.folds_into_convolution and following.training \
                and not self.input_grad:
            return ConvBatchNorm(self, following)
        return None

    def inference_steps(self):
        """The matrix product, then the bias as a step of its own: adding
        it never decreases a value, so a max pool may move before it."""
        w = self.weight.data.copy()
        stride, padding = self.stride, self.padding
        steps = [Step("convolution", lambda x: fast.conv2d_forward(
            x, w, None, stride, padding)[0])]
        if self.bias is not None:
            b = self.bias.data.copy()
            steps.append(Step("conv bias", lambda x: _add_in_place(x, b),
                              in_place=True, monotone=True))
        return steps


class ConvBatchNorm(Module):
    """A ``Conv2d`` and the ``BatchNorm2d`` after it, and the max pool that
    runs next if there is one, run as one (by ``Sequential.run_order``,
    while they train and the convolution needs no input gradient): the
    batch statistics come from the patch matrix, the normalised output
    from one matrix product, and the pool from the blocks that product
    gives (``fast_kernels.conv_batchnorm_forward``). The parameters,
    gradients and running statistics stay the layers' own."""

    input_grad = False

    def __init__(self, conv, norm, pool=None):
        self.conv, self.norm, self.pool = conv, norm, pool

    def __repr__(self):
        pool = "" if self.pool is None else f" + {self.pool!r}"
        return f"{self.conv!r} + {self.norm!r}{pool}"

    def fused_with(self, following):
        """The max pool right after it joins, if its windows tile (stride
        equal to its size)."""
        if self.pool is None and following.is_max_pool \
                and following.stride == following.kernel_size:
            return ConvBatchNorm(self.conv, self.norm, following)
        return None

    def forward(self, x):
        conv, norm = self.conv, self.norm
        conv._check(x, 4, 1, conv.in_channels,
                    f"(N, {conv.in_channels}, H, W)")
        b = None if conv.bias is None else conv.bias.data
        pool = None if self.pool is None else self.pool.kernel_size
        out, self.cache = fast.conv_batchnorm_forward(
            x, conv.weight.data, b, norm.weight.data, norm.bias.data,
            norm.running_mean, norm.running_var, norm.momentum, norm.eps,
            conv.stride, conv.padding, pool)
        return out

    def backward(self, dout):
        dw, db, dgamma, dbeta = fast.conv_batchnorm_backward(dout, self.cache)
        self.conv.weight.grad += dw
        if db is not None:
            self.conv.bias.grad += db
        self.norm.weight.grad += dgamma
        self.norm.bias.grad += dbeta
        return None


class MaxPool2d(Module):
    is_max_pool = shows_features = True

    def __init__(self, kernel_size, stride=None):
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"

    def forward(self, x):
        self._check(x, 4, what="(N, C, H, W)")
        out, self.cache = fast.maxpool2d_forward(
            x, self.kernel_size, self.stride)
        return out

    def backward(self, dout):
        return fast.maxpool2d_backward(dout, self.cache)

    def inference_steps(self):
        k, s = self.kernel_size, self.stride
        return [Step("max pool",
                     lambda x: fast.maxpool2d_forward(x, k, s, False)[0],
                     is_pool=True)]


# ---------------------------------------------------------------------------
# Batch normalisation
# ---------------------------------------------------------------------------
class _BatchNorm(Module):
    """Normalise each feature over the batch, then scale and shift.

    Running statistics follow PyTorch's convention:
    ``running = (1 - momentum) * running + momentum * batch``, with the
    unbiased batch variance. In evaluation mode they replace the batch
    statistics.
    """
    _buffer_names = ("running_mean", "running_var")
    _ndim = 2

    def __init__(self, num_features, eps=1e-5, momentum=0.1, *,
                 dtype=np.float32):
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features, dtype))
        self.bias = Parameter(np.zeros(num_features, dtype))
        self.running_mean = np.zeros(num_features, dtype)
        self.running_var = np.ones(num_features, dtype)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"

    def forward(self, x):
        shape = "(N, C)" if self._ndim == 2 else "(N, C, H, W)"
        self._check(x, self._ndim, 1, self.num_features,
                    shape.replace("C", str(self.num_features)))
        out, self.cache = fast.batchnorm_forward(
            x, self.weight.data, self.bias.data, self.running_mean,
            self.running_var, self.momentum, self.eps, self.training)
        return out

    def backward(self, dout):
        dx, dgamma, dbeta = fast.batchnorm_backward(dout, self.cache)
        self.weight.grad += dgamma
        self.bias.grad += dbeta
        return dx

    def inference_steps(self):
        """``x * scale + shift`` per channel, in place; monotone (so a max
        pool may move before it) when no scale is negative."""
        scale, shift = batchnorm_eval_affine(
            self.weight.data, self.bias.data, self.running_mean,
            self.running_var, self.eps)
        return [Step("batchnorm", lambda x: _affine_in_place(
            x, scale, shift), in_place=True,
            monotone=bool(np.all(scale >= 0)))]


class BatchNorm1d(_BatchNorm):
    _ndim = 2


class BatchNorm2d(_BatchNorm):
    _ndim = 4
    folds_into_convolution = True


# ---------------------------------------------------------------------------
# Activations and shape plumbing
# ---------------------------------------------------------------------------
class ReLU(Module):
    monotone = shows_features = True

    def forward(self, x):
        out, self.mask = fast.relu_forward(x)     # x * (x > 0), and x > 0
        return out

    def backward(self, dout):
        return fast.relu_backward(dout, self.mask)

    def inference_steps(self):
        return [Step("relu", lambda x: np.maximum(x, 0, out=x),
                     in_place=True, monotone=True)]


class Tanh(Module):
    shows_features = True

    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout):
        return dout * (1 - self.out ** 2)

    def inference_steps(self):
        return [Step("tanh", np.tanh)]


def sigmoid(x):
    """1 / (1 + exp(-x)), split by sign so that exp never overflows."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


class Sigmoid(Module):
    shows_features = True

    def forward(self, x):
        self.out = sigmoid(x)
        return self.out

    def backward(self, dout):
        return dout * self.out * (1 - self.out)

    def inference_steps(self):
        return [Step("sigmoid", sigmoid)]


class Flatten(Module):
    """(N, C, H, W) -> (N, C*H*W), in PyTorch's (C, H, W) order."""

    def forward(self, x):
        self.shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dout):
        return dout.reshape(self.shape)

    def inference_steps(self):
        return [Step("flatten", lambda x: x.reshape(len(x), -1),
                     output=Output.VIEW)]


class Dropout(Module):
    """Inverted dropout: zero each unit with probability p while training."""

    def __init__(self, p=0.5, *, rng=None):
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p, self.rng = p, _check_rng(rng)

    def extra_repr(self):
        return f"p={self.p}"

    def forward(self, x):
        if not self.training or self.p == 0:
            self.mask = None
            return x
        keep = 1 - self.p
        self.mask = (self.rng.random(x.shape) < keep).astype(x.dtype) / keep
        return x * self.mask

    def backward(self, dout):
        return dout if self.mask is None else dout * self.mask

    def inference_steps(self):
        return []                       # the identity in evaluation mode


# ---------------------------------------------------------------------------
# Containers
# ---------------------------------------------------------------------------
class Sequential(Module):
    """Layers applied in order; backward runs them in reverse."""

    def __init__(self, *layers):
        self.layers = list(layers)

    def _children(self):
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def run_order(self):
        """The layers in the order ``forward`` runs them: as listed, except
        that

        - a ``monotone`` layer (ReLU) directly followed by a max pool runs
          after it. ``relu(maxpool(x))`` equals ``maxpool(relu(x))`` value
          for value (both never decrease), and the ReLU then touches a
          quarter of the values, forward and backward;
        - then, neighbours run as one where the first says so
          (``fused_with``: a first convolution, its BatchNorm and the max
          pool after them, while they train)."""
        order, layers = [], self.layers
        i = 0
        while i < len(layers):
            if layers[i].monotone and i + 1 < len(layers) \
                    and layers[i + 1].is_max_pool:
                order += [layers[i + 1], layers[i]]
                i += 2
            else:
                order.append(layers[i])
                i += 1
        fused = order[:1]
        for layer in order[1:]:
            joint = fused[-1].fused_with(layer)
            if joint is None:
                fused.append(layer)
            else:
                fused[-1] = joint
        return fused

    def forward(self, x):
        self._ran = self.run_order()
        for layer in self._ran:
            x = layer.forward(x)
        return x

    @property
    def input_grad(self):
        return self.layers[0].input_grad if self.layers else True

    @input_grad.setter
    def input_grad(self, value):
        if self.layers:
            self.layers[0].input_grad = value

    def backward(self, dout):
        """Backpropagate ``dout`` through every layer, last to first; return
        the gradient with respect to the model's input (None when
        ``input_grad`` is False)."""
        for layer in reversed(getattr(self, "_ran", None) or self.layers):
            dout = layer.backward(dout)
        return dout

    def inference_steps(self):
        return [step for layer in self.layers
                for step in layer.inference_steps()]

    def __repr__(self):
        lines = [f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"


# The in-place inference steps: their runner hands them arrays whose
# (pixels, channels) rows are a view (``nnlib.inference.CompiledForward``).
def _add_in_place(x, b):
    """x += b per channel, as the convolution adds its bias."""
    fast.add_per_channel(rows_view(x), b)
    return x


def _affine_in_place(x, scale, shift):
    """x * scale + shift per channel, as BatchNorm's evaluation mode."""
    rows = rows_view(x)
    fast.affine_per_channel(rows, scale, shift, out=rows)
    return x
