"""Inference: a trained model's forward pass, rewritten to run faster.

Training keeps every intermediate array for the backward pass and runs the
layers in the order they were written. To predict, none of that is needed,
and ``compile_forward(model)`` turns a ``Sequential`` into a list of steps
that compute **exactly the same numbers** (bit for bit, at the same BLAS
thread count) with less work:

1. **Pool before the per-channel steps.** A function ``f`` that never
   decreases commutes with max: ``max(f(a), f(b)) = f(max(a, b))``. A
   convolution's bias, BatchNorm in evaluation mode (``x * scale + shift``,
   when every scale is >= 0) and ReLU are such functions, channel by
   channel, and that stays true in float32 because rounding never reverses
   an order. So ``Conv -> BatchNorm -> ReLU -> MaxPool`` becomes
   ``matmul -> MaxPool -> + bias -> * scale -> + shift -> ReLU``, and the
   last four steps touch a quarter of the values.
2. **In place.** Nothing is kept for a backward pass, so a step may
   overwrite the array the step before it made, instead of allocating a
   new one and keeping a mask or a cache.

The steps hold no state, so several threads may run them at once on
different batches (``nnlib.train.predict`` does). ``Sequential.forward`` in
evaluation mode is the reference; the tests check that the two agree
exactly, and that the caller's input array is never written to.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable

import numpy as np

from . import fast_kernels as fast
from .kernels import batchnorm_eval_affine
from .layers import (BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten,
                     Linear, MaxPool2d, Module, ReLU, Sequential, Sigmoid,
                     Tanh, sigmoid)


class Output(Enum):
    """What a step's ``run(x)`` returns."""
    NEW = "an array no one else holds"
    VIEW = "x itself, or a view of it"
    UNKNOWN = "a layer's own forward: anything"


@dataclass
class Step:
    """One operation of the compiled forward pass.

    ``in_place`` steps write into x and return it, so the runner first
    copies an array it does not own (the caller's batch). ``monotone``
    steps act on each value alone and never decrease, so a max pool
    (``is_pool``) may be moved in front of them.
    """
    name: str
    run: Callable
    output: Output = Output.NEW
    in_place: bool = False
    monotone: bool = False
    is_pool: bool = False

    def __post_init__(self):
        if self.in_place:
            self.output = Output.VIEW


def compile_forward(model: Module) -> "CompiledForward":
    """The model's evaluation-mode forward pass as a ``CompiledForward``.

    The steps hold copies of the weights and running statistics: a snapshot
    of the model as it is now. Compile again after training it further.
    """
    layers = list(model) if isinstance(model, Sequential) else [model]
    steps = [step for layer in layers for step in _steps(layer)]
    return CompiledForward(_pool_early(steps))


class CompiledForward:
    """Callable: ``forward(x)`` gives the logits of the batch ``x``.

    ``thread_safe`` is False when a step had to call a layer's own
    ``forward`` (a layer this module does not know), which may keep state
    and runs in the mode the layer is in.
    """

    def __init__(self, steps):
        self.steps = steps
        self.thread_safe = all(s.output is not Output.UNKNOWN for s in steps)

    def __call__(self, x):
        owned = False               # may the steps write into x?
        for step in self.steps:
            if step.in_place and not (owned and _rows(x) is not None):
                x, owned = _copy(x), True
            x = step.run(x)
            if step.output is not Output.VIEW:
                owned = step.output is Output.NEW
        return x

    def __repr__(self):
        return "CompiledForward(\n" + "\n".join(
            f"  {s.name}" for s in self.steps) + "\n)"


def _pool_early(steps):
    """Move each max pool in front of the monotone steps just before it."""
    steps = list(steps)
    for i, step in enumerate(steps):
        if step.is_pool:
            j = i
            while j > 0 and steps[j - 1].monotone:
                j -= 1
            steps.insert(j, steps.pop(i))
    return steps


# ---------------------------------------------------------------------------
# Each layer as steps
# ---------------------------------------------------------------------------
def _steps(layer):
    if isinstance(layer, Conv2d):
        return _conv_steps(layer)
    if isinstance(layer, Linear):
        w = layer.weight.data.copy()
        b = None if layer.bias is None else layer.bias.data.copy()
        return [Step("linear", lambda x: fast.linear_forward(x, w, b))]
    if isinstance(layer, (BatchNorm1d, BatchNorm2d)):
        scale, shift = batchnorm_eval_affine(
            layer.weight.data, layer.bias.data, layer.running_mean,
            layer.running_var, layer.eps)
        return [Step("batchnorm", lambda x: _affine(x, scale, shift),
                     in_place=True, monotone=bool(np.all(scale >= 0)))]
    if isinstance(layer, ReLU):
        return [Step("relu", lambda x: np.maximum(x, 0, out=x),
                     in_place=True, monotone=True)]
    if isinstance(layer, MaxPool2d):
        k, s = layer.kernel_size, layer.stride
        return [Step("max pool", lambda x: fast.maxpool2d_forward(x, k, s)[0],
                     is_pool=True)]
    if isinstance(layer, Flatten):
        return [Step("flatten", lambda x: x.reshape(len(x), -1),
                     output=Output.VIEW)]
    if isinstance(layer, Tanh):
        return [Step("tanh", np.tanh)]
    if isinstance(layer, Sigmoid):
        return [Step("sigmoid", sigmoid)]
    if isinstance(layer, Dropout):
        return []                       # the identity in evaluation mode
    return [Step(f"forward of {layer!r}", layer.forward,
                 output=Output.UNKNOWN)]


def _conv_steps(layer):
    w = layer.weight.data.copy()
    stride, padding = layer.stride, layer.padding
    steps = [Step("convolution", lambda x: fast.conv2d_forward(
        x, w, None, stride, padding)[0])]
    if layer.bias is not None:
        b = layer.bias.data.copy()
        steps.append(Step("conv bias", lambda x: _add(x, b), in_place=True,
                          monotone=True))
    return steps


def _rows(x):
    """x's values as a (M, C) matrix, one row per pixel (4-D, read
    channels-last) or per example (2-D); a view, or None if x's layout
    does not allow one."""
    rows = x.transpose(0, 2, 3, 1) if x.ndim == 4 else x
    return rows.reshape(-1, x.shape[1]) if rows.flags.c_contiguous else None


def _copy(x):
    """A copy of x that the in-place steps can write into (channels-last
    in memory if 4-D)."""
    if x.ndim == 4:
        return x.transpose(0, 2, 3, 1).copy().transpose(0, 3, 1, 2)
    return x.copy()


def _add(x, b):
    """x += b per channel, in place, as the convolution adds its bias."""
    fast.add_per_channel(_rows(x), b)
    return x


def _affine(x, scale, shift):
    """x * scale + shift per channel, in place, as BatchNorm's evaluation
    mode computes it."""
    rows = _rows(x)
    fast.affine_per_channel(rows, scale, shift, out=rows)
    return x
