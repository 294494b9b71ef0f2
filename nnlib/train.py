"""The training loop: ``fit``, ``evaluate`` and ``predict``.

``fit`` runs epochs of mini-batch steps (forward, loss, backward, optimiser
step), evaluates on a validation set after each epoch, and returns a
``History``. Anything that watches training (a progress bar, the live
dashboard of ``nnlib.live``) is a ``Callback``: the loop calls its hooks and
knows nothing else about it, so it never imports display code.

What one step does is a function, ``step(model, loss_fn, X_batch,
y_batch) -> (loss, logits)``: by default ``train_step``, the layer API's
forward, loss and backward; chapter 7 passes its autograd step instead, and
trains with the same loop.

Three ways training can stop early, all of which return the history so far
and leave the model with the weights it has reached:

- the loss becomes NaN or infinite (``history.stop_reason == 'nan'``), with
  the epoch, the step and the likely cause in ``history.message``;
- a callback sets ``state.stop_training = True`` (``'stopped'``): the loop
  ends after that step's (or that epoch's) callbacks;
- Ctrl-C, a ``KeyboardInterrupt`` (``history.stop_reason == 'interrupted'``).
"""
import functools
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import ThreadpoolController

from .data import batches, check_pair
from .inference import compile_forward
from .init import _check_rng
from .losses import CrossEntropyLoss


@dataclass(repr=False)
class History:
    """What happened during ``fit``: one entry per epoch, one per step.

    Per epoch: ``epoch`` (1, 2, ...), ``train_loss`` and ``train_acc`` (the
    running mean over the epoch's batches, so taken while the weights were
    still changing), ``val_loss`` and ``val_acc`` (measured after the epoch,
    empty lists when there is no validation set), ``lr`` (the rate used in
    the epoch) and ``epoch_time`` (seconds, validation included).
    Accuracies are fractions in [0, 1].

    Per step: ``steps`` (1, 2, ... counted over all epochs) and
    ``step_loss`` (the loss of that step's batch).

    ``stop_reason`` is ``'completed'``, ``'nan'``, ``'stopped'`` or
    ``'interrupted'`` once training has ended (``None`` while it runs);
    ``message`` says more.
    """

    epoch: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    epoch_time: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    step_loss: list = field(default_factory=list)
    stop_reason: str | None = None
    message: str = ""

    def __repr__(self):
        # A short summary: printing thousands of step losses helps no one.
        last = ""
        if self.val_acc:
            last = f", last val acc {self.val_acc[-1]:.2%}"
        elif self.train_acc:
            last = f", last train acc {self.train_acc[-1]:.2%}"
        return (f"History({len(self.epoch)} epochs, {len(self.steps)} steps"
                f"{last}, stop_reason={self.stop_reason!r})")


@dataclass
class TrainState:
    """What callbacks see: the objects being trained and where the loop is.

    ``epoch`` counts from 1 to ``num_epochs``; ``step`` counts the batches
    of the current epoch from 1 to ``steps_per_epoch``. ``batch_loss`` and
    ``batch_acc`` belong to the latest step, ``lr`` to the current epoch.
    A callback sets ``stop_training`` to True to end training cleanly.
    """

    model: object
    optimizer: object
    history: History
    epoch: int
    num_epochs: int
    step: int
    steps_per_epoch: int
    total_steps: int
    batch_loss: float = math.nan
    batch_acc: float = math.nan
    lr: float | None = None
    stop_training: bool = False


class Callback:
    """Hooks that ``fit`` calls; override the ones you need.

    ``on_batch_end`` runs after every step (hundreds of times a second), so
    it must be cheap: keep numbers, and do slow work (drawing, printing)
    only now and then.
    """

    def on_train_begin(self, state):
        pass

    def on_epoch_begin(self, state):
        pass

    def on_batch_end(self, state):
        pass

    def on_epoch_end(self, state):
        pass

    def on_train_end(self, state):
        pass


def train_step(model, loss_fn, X_batch, y_batch):
    """One step's forward, loss and backward with the layer API: returns
    (loss, logits), with the gradients added to each parameter's ``.grad``.
    ``fit``'s default ``step``."""
    logits = model.forward(X_batch)
    loss = float(loss_fn.forward(logits, y_batch))
    model.backward(loss_fn.backward())
    return loss, logits


def fit(model, loss_fn, optimizer, train_data, val_data=None, *, num_epochs,
        batch_size, rng, scheduler=None, callbacks=(), augment=None,
        step=train_step):
    """Train ``model`` on ``train_data = (X, y)``; return a ``History``.

    Each epoch visits the training examples once, in an order shuffled by
    ``rng``, in batches of ``batch_size`` (the last batch may be smaller).
    ``augment(X_batch, rng) -> X_batch``, if given, transforms each training
    batch. After each epoch the model is evaluated on ``val_data = (X, y)``
    (if given), then ``scheduler.step()`` is called (if given).

    Each step is PyTorch's: ``optimizer.zero_grad()``, then
    ``step(model, loss_fn, X_batch, y_batch)`` (forward, loss, backward;
    ``train_step`` by default), then ``optimizer.step()``. While it trains,
    the model's ``input_grad`` is False (the gradient with respect to the
    images is never used). The matrix products use the BLAS library's
    threads.

    A NaN or infinite loss stops training before that step changes the
    weights; a callback that sets ``state.stop_training`` stops it after
    its hook; Ctrl-C (``KeyboardInterrupt``) stops it where it is (a step
    cut short may have updated only some of the weights). Either way the
    callbacks' ``on_train_end`` runs, the message is printed, and the
    history of the complete epochs and steps is returned. The model is
    left in the mode (training or evaluation) it was in before.
    """
    X, y = _check_data(train_data, "train_data")
    if val_data is not None:
        X_val, y_val = _check_data(val_data, "val_data")
    _check_count(num_epochs, "num_epochs", minimum=0)
    _check_count(batch_size, "batch_size", minimum=1)
    rng = _check_rng(rng)
    callbacks = list(callbacks)

    steps_per_epoch = math.ceil(len(X) / batch_size)
    history = History()
    state = TrainState(model, optimizer, history, epoch=0,
                       num_epochs=num_epochs, step=0,
                       steps_per_epoch=steps_per_epoch,
                       total_steps=steps_per_epoch * num_epochs)
    was_training, input_grad = model.training, model.input_grad
    model.train()
    model.input_grad = False
    for cb in callbacks:
        cb.on_train_begin(state)
    start = time.perf_counter()
    try:
        for epoch in range(1, num_epochs + 1):
            state.epoch, state.step, state.lr = epoch, 0, optimizer.lr
            for cb in callbacks:
                cb.on_epoch_begin(state)
            epoch_start = time.perf_counter()
            result = _train_epoch(model, loss_fn, optimizer, X, y,
                                  batch_size, rng, augment, state, callbacks,
                                  step)
            if result is None:
                history.stop_reason = "nan"
                history.message = (
                    f"loss became {state.batch_loss} at epoch {epoch}, step "
                    f"{state.step}: the learning rate ({state.lr}) is "
                    "probably too high, or the initial weights too large")
                break
            if result == "stopped":
                _stopped(state, "during")
                break
            if val_data is not None:
                val_loss, val_acc = evaluate(model, X_val, y_val, loss_fn)
                history.val_loss.append(val_loss)
                history.val_acc.append(val_acc)
            history.epoch.append(epoch)
            history.train_loss.append(result[0])
            history.train_acc.append(result[1])
            history.lr.append(state.lr)
            history.epoch_time.append(time.perf_counter() - epoch_start)
            for cb in callbacks:
                cb.on_epoch_end(state)
            if state.stop_training:
                _stopped(state, "at the end of")
                break
            if scheduler is not None:
                scheduler.step()
        else:
            history.stop_reason = "completed"
            history.message = (f"trained {num_epochs} epochs in "
                               f"{time.perf_counter() - start:.1f} s")
    except KeyboardInterrupt:
        history.stop_reason = "interrupted"
        history.message = (
            f"training interrupted at epoch {state.epoch}, step {state.step}; "
            f"the model keeps its weights and the history its "
            f"{len(history.epoch)} complete epochs")
    model.train(was_training)
    model.input_grad = input_grad
    for cb in callbacks:
        cb.on_train_end(state)
    if history.stop_reason != "completed":
        print(history.message, file=sys.stderr)
    return history


def _stopped(state, when):
    state.history.stop_reason = "stopped"
    state.history.message = (
        f"training stopped by a callback {when} epoch {state.epoch} (step "
        f"{state.step}); the history keeps its "
        f"{len(state.history.epoch)} complete epochs")


def _train_epoch(model, loss_fn, optimizer, X, y, batch_size, rng, augment,
                 state, callbacks, step):
    """One pass over (X, y). Return (mean loss, accuracy); None as soon as
    the loss is not finite; "stopped" when a callback asks to stop."""
    history = state.history
    first_step = len(history.steps) + 1
    loss_sum = correct = 0.0
    for i, (X_batch, y_batch) in enumerate(batches(X, y, batch_size,
                                                   rng=rng)):
        if augment is not None:
            X_batch = augment(X_batch, rng)
        optimizer.zero_grad()          # backward adds to the gradients
        loss, logits = step(model, loss_fn, X_batch, y_batch)
        state.step, state.batch_loss = i + 1, loss
        history.steps.append(first_step + i)
        history.step_loss.append(loss)
        if not math.isfinite(loss):
            return None
        hits = int(np.count_nonzero(logits.argmax(axis=1) == y_batch))
        state.batch_acc = hits / len(y_batch)
        optimizer.step()
        loss_sum += loss * len(y_batch)
        correct += hits
        for cb in callbacks:
            cb.on_batch_end(state)
        if state.stop_training:
            return "stopped"
    return loss_sum / len(X), correct / len(X)


def predict(model, X, batch_size=256, workers=None):
    """The model's outputs (logits) for ``X``, computed in batches in
    evaluation mode; the model's mode is restored afterwards.

    The batches run through ``nnlib.inference.compile_forward(model)``: the
    same numbers as ``model.forward`` in evaluation mode, with less work
    (pooling before the per-channel steps, no caches, in place).

    The default batch of 256 keeps a CNN's largest intermediate arrays
    (the first layer's im2col rows) near the size of the CPU's caches
    (the Speed page has the measurement).

    ``workers`` threads (default: as many as the BLAS library has) predict
    alternate batches at once, with BLAS on one thread each. NumPy's
    element-wise work (im2col's copies, pooling, BatchNorm, ReLU) runs on
    one core per call, so splitting the batches is what lets it use them
    all. Each batch is computed the same way whichever thread takes it, so
    the result does not vary between runs.
    """
    _check_count(batch_size, "batch_size", minimum=1)
    if len(X) == 0:
        raise ValueError("predict: X is empty (0 examples)")
    if workers is None:
        workers = _blas_threads()
    _check_count(workers, "workers", minimum=1)
    batches = [X[i:i + batch_size] for i in range(0, len(X), batch_size)]
    was_training = model.training
    model.eval()
    try:
        forward = compile_forward(model)
        if not forward.thread_safe:
            workers = 1
        if min(workers, len(batches)) == 1:
            parts = [forward(batch) for batch in batches]
        else:
            parts = _in_threads(forward, batches, workers)
    finally:
        model.train(was_training)
    return np.concatenate(parts)


@functools.cache
def _blas():
    """The BLAS libraries loaded with NumPy, found once: looking them up
    takes about a millisecond, as long as predicting a few batches."""
    return ThreadpoolController().select(user_api="blas")


def _blas_threads():
    """How many threads the BLAS library behind NumPy may use."""
    return max((lib["num_threads"] for lib in _blas().info()), default=1)


def _in_threads(function, batches, workers):
    """``[function(b) for b in batches]``, computed by ``workers`` threads
    with BLAS on one thread each: thread w takes batches w, w + workers,
    ... (a fixed share: handing them out one by one costs a queue's
    overhead per batch)."""
    errors = np.geterr()          # np.errstate is per thread: pass it on

    def work(w):
        with np.errstate(**errors):
            return [function(b) for b in batches[w::workers]]

    with _blas().limit(limits=1), ThreadPoolExecutor(workers) as pool:
        by_worker = list(pool.map(work, range(workers)))
    results = [None] * len(batches)
    for w, outputs in enumerate(by_worker):
        results[w::workers] = outputs
    return results


def evaluate(model, X, y, loss_fn=None, batch_size=256):
    """(mean loss, accuracy) of ``model`` on (X, y), in evaluation mode.

    The loss is ``loss_fn``'s (cross-entropy if None); accuracy is the
    fraction of examples whose largest logit is the right class.
    """
    X, y = _check_data((X, y), "(X, y)")
    logits = predict(model, X, batch_size)
    loss = (loss_fn or CrossEntropyLoss()).forward(logits, y)
    accuracy = int(np.count_nonzero(logits.argmax(axis=1) == y)) / len(y)
    return float(loss), accuracy


def _check_data(data, name):
    """The pair (X, y) of ``fit``'s arguments, checked by ``data.check_pair``."""
    try:
        X, y = data
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (X, y) of arrays, got "
                        f"{type(data).__name__}") from None
    return check_pair(X, y, name)


def _check_count(value, name, minimum):
    if not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, "
                         f"got {value!r}")
