"""Reverse-mode automatic differentiation over NumPy arrays.

A ``Tensor`` holds an array (``.data``), the gradient of a scalar with
respect to it (``.grad``) and how it was made: the tensors it came from
(``.parents``), the operation's name (``.op``), the arrays that operation
saved for the backward pass (``.saved``) and the function that turns the
gradient of the output into gradients of the parents (a vector-Jacobian
product). ``loss.backward()`` visits the graph from the loss back to the
leaves in reverse topological order, and *adds* each leaf's gradient to its
``.grad``: that is why a training loop clears them (``zero_grad``) before
each step. A tensor that is not a scalar starts the backward pass from a
gradient of the same shape, ``out.backward(w)``, which gives what
``(out * w).sum().backward()`` gives. ``with no_grad():`` computes without
recording anything; ``t.detach()`` is ``t``'s values with no history, so
that no gradient flows back through it (a stop-gradient).

The operations are PyTorch's, by name: ``matmul`` (``@``), ``+ - * / **``
with broadcasting, ``relu``, ``reshape``, ``T``, ``sum``, ``mean``,
``log_softmax``, ``nll_loss``, ``cross_entropy``, ``conv2d`` and
``max_pool2d`` (over ``nnlib.kernels``), and ``batch_norm``, composed from
the others. ``Linear``, ``Conv2d``, ``BatchNorm2d``, ``ReLU``, ``MaxPool2d``,
``Flatten``, ``Sequential``, ``from_nnlib`` and ``SGD`` are ``torch.nn``'s
and ``torch.optim``'s counterparts, just enough to train the book's models.
"""
import contextlib

import numpy as np

from . import kernels
from . import layers as nn_layers
from .losses import log_softmax as _log_softmax_array

_recording = [True]


@contextlib.contextmanager
def no_grad():
    """Compute without recording a graph (evaluation, optimiser steps)."""
    before, _recording[0] = _recording[0], False
    try:
        yield
    finally:
        _recording[0] = before


class Tensor:
    """An array, its gradient, and the operation that made it."""

    def __init__(self, data, requires_grad=False, dtype=None):
        self.data = np.asarray(data, dtype=dtype)
        self.requires_grad = requires_grad
        self.grad = None
        self.parents, self.op, self.saved, self._vjp = (), "", (), None

    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    is_leaf = property(lambda self: not self.parents)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        how = f", op={self.op!r}" if self.op else (
            ", requires_grad=True" if self.requires_grad else "")
        return f"Tensor(shape={self.shape}, dtype={self.dtype}{how})"

    def item(self):
        return self.data.item()

    def backward(self, grad=None):
        """Add d(self)/d(leaf) to every leaf's ``.grad`` that requires it.

        ``grad`` is the gradient of the final scalar with respect to this
        tensor; for a scalar loss it defaults to 1.
        """
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError("backward() needs a gradient for a tensor "
                                   f"of shape {self.shape}; only a scalar "
                                   "can start it alone")
            grad = np.ones_like(self.data)
        grad = np.asarray(grad, self.dtype)
        if grad.shape != self.shape:
            raise ValueError(f"backward(grad): grad has shape {grad.shape}, "
                             f"but this tensor has shape {self.shape}")
        grads = {id(self): grad}
        for t in reversed(self.graph()):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if t.is_leaf:           # accumulate: training must zero them
                t.grad = g.copy() if t.grad is None else t.grad + g
                continue
            for parent, pg in zip(t.parents, t._vjp(g, *t.saved)):
                if pg is not None and parent.requires_grad:
                    old = grads.get(id(parent))
                    grads[id(parent)] = pg if old is None else old + pg

    def detach(self):
        """The same values (the same array, not a copy) with no history:
        to ``backward`` a constant, so no gradient flows back through it
        (PyTorch's ``detach``, a *stop-gradient*)."""
        return Tensor(self.data)

    def graph(self):
        """The tensors this one was computed from (that require a gradient),
        in topological order: each after all of its parents; self last."""
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            t, parents_done = stack.pop()
            if parents_done:
                order.append(t)
            elif id(t) not in seen:
                seen.add(id(t))
                stack.append((t, True))
                stack += [(p, False) for p in t.parents if p.requires_grad]
        return order

    # operators, so that formulas read as NumPy does
    def __add__(self, o): return add(self, o)
    def __radd__(self, o): return add(o, self)
    def __sub__(self, o): return sub(self, o)
    def __rsub__(self, o): return sub(o, self)
    def __mul__(self, o): return mul(self, o)
    def __rmul__(self, o): return mul(o, self)
    def __truediv__(self, o): return mul(self, power(tensor(o, self), -1.))
    def __neg__(self): return mul(self, -1.0)
    def __pow__(self, p): return power(self, p)
    def __matmul__(self, o): return matmul(self, o)
    T = property(lambda self: transpose(self))

    def reshape(self, *shape):
        return reshape(self, *shape)

    def sum(self, axis=None, keepdims=False):
        return tensor_sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return mean(self, axis, keepdims)


def tensor(x, like=None):
    """``x`` as a Tensor (a constant, if it is not one already). A plain
    number takes the dtype of ``like``, as NumPy's scalars do."""
    if isinstance(x, Tensor):
        return x
    scalar = isinstance(x, (int, float)) and like is not None
    return Tensor(x, dtype=tensor(like).dtype if scalar else None)


def _pair(a, b):
    return tensor(a, b), tensor(b, a)


def record(data, op, parents, vjp, saved=()):
    """The result of an operation, with what backward needs if recording.

    ``vjp(g, *saved)`` returns one gradient per parent (None where not
    needed), given the gradient ``g`` of the result.
    """
    out = Tensor(data)
    if _recording[0] and any(p.requires_grad for p in parents):
        out.requires_grad = True
        out.parents, out.op, out.saved, out._vjp = parents, op, saved, vjp
    return out


def unbroadcast(g, shape):
    """Sum ``g`` over the axes that broadcasting added or stretched, so that
    it has ``shape`` again: a value used many times gets all their grads."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and
                      g.shape[i] != 1)
    return g.sum(axis=stretched, keepdims=True) if stretched else g


# -- element-wise, with broadcasting -------------------------------------
def add(a, b):
    a, b = _pair(a, b)
    return record(a.data + b.data, "+", (a, b), lambda g, sa, sb: (
        unbroadcast(g, sa), unbroadcast(g, sb)), (a.shape, b.shape))


def sub(a, b):
    a, b = _pair(a, b)
    return record(a.data - b.data, "-", (a, b), lambda g, sa, sb: (
        unbroadcast(g, sa), unbroadcast(-g, sb)), (a.shape, b.shape))


def mul(a, b):
    a, b = _pair(a, b)
    # saves both inputs: each one's gradient is the other times g
    return record(a.data * b.data, "*", (a, b), lambda g, x, y: (
        unbroadcast(g * y, x.shape) if a.requires_grad else None,
        unbroadcast(g * x, y.shape) if b.requires_grad else None),
        (a.data, b.data))


def power(a, p):
    """``a ** p`` for a constant number p."""
    a = tensor(a)
    return record(a.data ** p, f"**{p:g}", (a,), lambda g, x: (
        g * (p * x ** (p - 1)).astype(x.dtype),), (a.data,))


def relu(a):
    mask = a.data > 0                  # saves one byte per element
    return record(a.data * mask, "relu", (a,), lambda g, m: (g * m,),
                  (mask,))


# -- matrices and shapes ---------------------------------------------------
def matmul(a, b):
    """(n, k) @ (k, m): saves both inputs, each needed for the other's grad
    (a gradient nobody needs, such as the images', is not computed)."""
    a, b = _pair(a, b)
    return record(a.data @ b.data, "@", (a, b), lambda g, x, y: (
        g @ y.T if a.requires_grad else None,
        x.T @ g if b.requires_grad else None), (a.data, b.data))


def transpose(a):
    return record(a.data.T, "T", (a,), lambda g: (g.T,))


def reshape(a, *shape):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) \
        else shape
    return record(a.data.reshape(shape), "reshape", (a,),
                  lambda g, old: (g.reshape(old),), (a.shape,))


def tensor_sum(a, axis=None, keepdims=False):
    """Sums of many float32 numbers are added up in float64 and rounded
    once: added in float32, one by one, their rounding errors pile up."""
    def vjp(g, shape):
        if not keepdims and axis is not None:
            g = np.expand_dims(g, axis)
        return (np.broadcast_to(g, shape),)
    total = a.data.sum(axis=axis, keepdims=keepdims, dtype=np.float64)
    return record(np.asarray(total, a.dtype), "sum", (a,), vjp, (a.shape,))


def mean(a, axis=None, keepdims=False):
    total = tensor_sum(a, axis, keepdims)
    count = a.data.size // max(total.data.size, 1)
    return total * np.asarray(1 / count, a.dtype)


# -- classification loss ---------------------------------------------------
def log_softmax(a):
    """Row-wise log(softmax(a)) for a of shape (N, C), without overflow."""
    out = _log_softmax_array(a.data)
    return record(out, "log_softmax", (a,), lambda g, logp: (
        g - np.exp(logp) * g.sum(axis=1, keepdims=True),), (out,))


def nll_loss(logp, y):
    """Mean over the N rows of -logp[n, y[n]] (y: integer labels)."""
    y = np.asarray(y)
    rows = np.arange(len(y))

    def vjp(g):
        d = np.zeros_like(logp.data)
        d[rows, y] = -g / len(y)
        return (d,)
    out = -logp.data[rows, y].sum(dtype=logp.dtype) / len(y)
    return record(np.asarray(out, logp.dtype), "nll_loss", (logp,), vjp)


def cross_entropy(logits, y):
    """``nll_loss(log_softmax(logits), y)``, PyTorch's F.cross_entropy."""
    return nll_loss(log_softmax(logits), y)


# -- convolution, pooling, batch normalisation ------------------------------
def conv2d(x, w, b=None, stride=1, padding=0):
    """Convolution through nnlib's im2col kernels; saves the im2col matrix."""
    x, w = tensor(x), tensor(w)
    parents = (x, w) if b is None else (x, w, tensor(b))
    out, cache = kernels.conv2d_forward(
        x.data, w.data, None if b is None else parents[2].data, stride,
        padding)

    def vjp(g, cache):
        dx, dw, db = kernels.conv2d_backward(g, cache)
        return (dx, dw) if b is None else (dx, dw, db)
    return record(out, "conv2d", parents, vjp, (cache,))


def max_pool2d(x, kernel_size, stride=None):
    """Max pooling; saves its input and output to find each window's max."""
    out, cache = kernels.maxpool2d_forward(x.data, kernel_size, stride)
    return record(out, "max_pool2d", (x,), lambda g, cache: (
        kernels.maxpool2d_backward(g, cache),), (cache,))


def batch_norm(x, gamma, beta, running_mean, running_var, training=True,
               momentum=0.1, eps=1e-5):
    """BatchNorm over N (and H, W), composed of the operations above.

    In training mode it normalises with the batch's statistics and updates
    ``running_mean``/``running_var`` (arrays) in place, as nnlib does.
    """
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = (1, -1) if x.ndim == 2 else (1, -1, 1, 1)
    if training:
        mu = x.mean(axis=axes, keepdims=True)
        xc = x - mu
        var = (xc * xc).mean(axis=axes, keepdims=True)
        kernels.update_running_stats(
            running_mean, running_var, mu.data.reshape(-1),
            var.data.reshape(-1), x.data.size // x.shape[1], momentum)
    else:
        xc = x - running_mean.reshape(shape)
        var = Tensor(running_var.reshape(shape))
    x_hat = xc * (var + eps) ** -0.5
    return x_hat * gamma.reshape(shape) + beta.reshape(shape)


# -- torch.nn's and torch.optim's counterparts ------------------------------
class Module:
    """Parameters (leaf Tensors) by name, and the training/evaluation mode.

    A class that mirrors an nnlib layer names it in ``twin_of`` and builds
    itself from one in ``from_layer``; ``from_nnlib`` finds it there.
    """
    training = True
    layers = ()
    twin_of = None                 # the nnlib.layers class this one mirrors
    # A Tensor made from data never requires a gradient, so no input
    # gradient is computed whatever this says; it is here because
    # nnlib.train.fit sets it off while it trains, as for nnlib's layers.
    input_grad = True

    @classmethod
    def from_layer(cls, layer):
        """This class's twin of an nnlib ``layer``, from copies of its
        weights (a layer without settings or weights by default)."""
        return cls()

    def named_parameters(self, prefix=""):
        out = [(prefix + k, v) for k, v in vars(self).items()
               if isinstance(v, Tensor) and v.requires_grad]
        for i, layer in enumerate(self.layers):
            out += layer.named_parameters(f"{prefix}{i}.")
        return out

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def train(self, mode=True):
        self.training = mode
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def __repr__(self):
        return type(self).__name__ + "()"


def _param(array):
    return Tensor(np.array(array), requires_grad=True)   # a copy


class Linear(Module):
    twin_of = nn_layers.Linear

    @classmethod
    def from_layer(cls, layer):
        return cls(layer.weight.data, layer.bias.data)

    def __init__(self, weight, bias):
        self.weight, self.bias = _param(weight), _param(bias)

    def __call__(self, x):
        return x @ self.weight.T + self.bias


class Conv2d(Module):
    twin_of = nn_layers.Conv2d

    @classmethod
    def from_layer(cls, layer):
        return cls(layer.weight.data, layer.bias.data, layer.stride,
                   layer.padding)

    def __init__(self, weight, bias, stride=1, padding=0):
        self.weight, self.bias = _param(weight), _param(bias)
        self.stride, self.padding = stride, padding

    def __call__(self, x):
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)


class BatchNorm2d(Module):
    twin_of = nn_layers.BatchNorm2d

    @classmethod
    def from_layer(cls, layer):
        return cls(layer.weight.data, layer.bias.data, layer.running_mean,
                   layer.running_var, layer.momentum, layer.eps)

    def __init__(self, weight, bias, running_mean, running_var,
                 momentum=0.1, eps=1e-5):
        self.weight, self.bias = _param(weight), _param(bias)
        self.running_mean = np.array(running_mean)
        self.running_var = np.array(running_var)
        self.momentum, self.eps = momentum, eps

    def __call__(self, x):
        return batch_norm(x, self.weight, self.bias, self.running_mean,
                          self.running_var, self.training, self.momentum,
                          self.eps)


class ReLU(Module):
    twin_of = nn_layers.ReLU
    __call__ = staticmethod(relu)


class MaxPool2d(Module):
    twin_of = nn_layers.MaxPool2d

    @classmethod
    def from_layer(cls, layer):
        if layer.stride != layer.kernel_size:
            raise TypeError(f"from_nnlib: {layer!r} has a stride other than "
                            "its kernel size, which this MaxPool2d does not "
                            "have; use stride=kernel_size")
        return cls(layer.kernel_size)

    def __init__(self, kernel_size):
        self.kernel_size = kernel_size

    def __call__(self, x):
        return max_pool2d(x, self.kernel_size)


class Flatten(Module):
    twin_of = nn_layers.Flatten

    def __call__(self, x):
        return x.reshape(len(x), -1)


class Sequential(Module):
    def __init__(self, *layers):
        self.layers = list(layers)

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def __repr__(self):
        return "Sequential(" + ", ".join(map(repr, self.layers)) + ")"


def from_nnlib(model):
    """An autograd twin of an nnlib ``Sequential``, starting from copies of
    its weights; parameter names are the same (``0.weight``, ...). Each
    layer's twin is the class above whose ``twin_of`` is its type."""
    twins = {cls.twin_of: cls for cls in _subclasses(Module) if cls.twin_of}
    out = []
    for layer in model:
        if type(layer) not in twins:
            known = ", ".join(sorted(t.__name__ for t in twins))
            raise TypeError(f"from_nnlib does not know {layer!r}; it knows "
                            f"{known}. Give an autograd Module subclass "
                            f"twin_of = nnlib.layers.{type(layer).__name__}")
        out.append(twins[type(layer)].from_layer(layer))
    return Sequential(*out)


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def train_step(model, loss_fn, X_batch, y_batch):
    """``nnlib.train.fit``'s step for a model of this module: the forward
    pass on ``Tensor(X_batch)``, ``loss = loss_fn(logits, y_batch)`` (e.g.
    ``cross_entropy``), ``loss.backward()``; returns (loss, logits) as
    numbers and an array. With it, ``fit(model, cross_entropy, optimizer,
    ..., step=train_step)`` trains an autograd model."""
    logits = model(Tensor(X_batch))
    loss = loss_fn(logits, y_batch)
    loss.backward()
    return loss.item(), logits.data


class SGD:
    """torch.optim.SGD (and nnlib.optim.SGD) without weight decay:
    ``v = momentum * v + g; p -= lr * v`` (v = g when momentum is 0)."""

    def __init__(self, params, lr, momentum=0.0):
        self.params, self.lr, self.momentum = list(params), lr, momentum
        self.velocity = [np.zeros_like(p.data) for p in self.params]

    def zero_grad(self):
        for p in self.params:
            p.grad = None          # as PyTorch does by default

    def step(self):
        for p, v in zip(self.params, self.velocity):
            g = p.grad
            if self.momentum:
                v *= self.momentum
                v += g
                g = v
            p.data -= self.lr * g
