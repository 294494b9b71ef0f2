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

Each layer says which steps it is (``Module.inference_steps`` in
``nnlib.layers``; a layer that does not say runs its own ``forward``), so a
new layer needs nothing here. The steps hold no state, so several threads
may run them at once on different batches (``nnlib.train.predict`` does).
``Sequential.forward`` in evaluation mode is the reference; the tests check
that the two agree exactly, and that the caller's input array is never
written to.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable

from .layout import channels_last_copy, rows_view


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


def compile_forward(model) -> "CompiledForward":
    """The model's evaluation-mode forward pass as a ``CompiledForward``.

    The steps hold copies of the weights and running statistics: a snapshot
    of the model as it is now. Compile again after training it further.
    """
    return CompiledForward(_pool_early(model.inference_steps()))


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
            if step.in_place and not (owned and rows_view(x) is not None):
                x, owned = channels_last_copy(x), True
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
