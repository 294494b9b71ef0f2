"""fit, evaluate and predict, on small synthetic problems."""
import math
import re

import numpy as np
import pytest

from nnlib.layers import BatchNorm1d, Dropout, Linear, ReLU, Sequential
from nnlib.losses import CrossEntropyLoss
from nnlib.optim import SGD, StepLR
from nnlib.train import Callback, evaluate, fit, predict


def blobs(n, rng, num_classes=3):
    """Gaussian blobs in 2-D, one per class, far apart: easy to separate."""
    angles = 2 * np.pi * np.arange(num_classes) / num_classes
    centres = 4 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    y = rng.integers(0, num_classes, n)
    X = centres[y] + rng.standard_normal((n, 2))
    return X.astype(np.float32), y


def small_net(seed=0, hidden=16):
    rng = np.random.default_rng(seed)
    return Sequential(Linear(2, hidden, rng=rng), ReLU(),
                      Linear(hidden, 3, rng=rng))


def train(model, X, y, *, lr=0.1, num_epochs=2, batch_size=32, seed=0,
          **kwargs):
    return fit(model, CrossEntropyLoss(), SGD(model.parameters(), lr),
               (X, y), num_epochs=num_epochs, batch_size=batch_size,
               rng=np.random.default_rng(seed), **kwargs)


def weights(model):
    return [p.data.copy() for p in model.parameters()]


class Recorder(Callback):
    """Logs every hook call as (hook, epoch, step)."""

    def __init__(self):
        self.calls = []

    def _log(self, hook, state):
        self.calls.append((hook, state.epoch, state.step))

    def on_train_begin(self, state):
        self._log("train_begin", state)

    def on_epoch_begin(self, state):
        self._log("epoch_begin", state)

    def on_batch_end(self, state):
        self._log("batch_end", state)

    def on_epoch_end(self, state):
        self._log("epoch_end", state)
        # the history already holds the epoch that just ended
        assert state.history.epoch[-1] == state.epoch

    def on_train_end(self, state):
        self._log("train_end", state)


class StopAt(Callback):
    """Raises KeyboardInterrupt (a Ctrl-C) after a given step; keeps the
    weights of every step it sees."""

    def __init__(self, epoch, step):
        self.at, self.seen = (epoch, step), []

    def on_batch_end(self, state):
        self.seen.append(weights(state.model))
        if (state.epoch, state.step) == self.at:
            raise KeyboardInterrupt


def test_fit_learns_separable_blobs():
    rng = np.random.default_rng(0)
    X, y = blobs(600, rng)
    X_val, y_val = blobs(300, rng)
    model = small_net()
    _, acc_before = evaluate(model, X_val, y_val)
    history = fit(model, CrossEntropyLoss(), SGD(model.parameters(), 0.1),
                  (X, y), (X_val, y_val), num_epochs=5, batch_size=32,
                  rng=rng)
    assert acc_before < 0.8
    assert history.stop_reason == "completed"
    assert history.val_acc[-1] > 0.97
    assert history.train_loss[-1] < history.train_loss[0] / 2
    # the last epoch's validation figures are what evaluate measures now
    loss, acc = evaluate(model, X_val, y_val)
    assert (loss, acc) == pytest.approx((history.val_loss[-1],
                                         history.val_acc[-1]))


def test_history_has_one_entry_per_epoch_and_per_step():
    rng = np.random.default_rng(1)
    X, y = blobs(250, rng)                  # 8 batches of 32: the last has 26
    model = small_net()
    opt = SGD(model.parameters(), 0.1)
    history = fit(model, CrossEntropyLoss(), opt, (X, y), (X[:50], y[:50]),
                  num_epochs=3, batch_size=32, rng=rng,
                  scheduler=StepLR(opt, step_size=1, gamma=0.5))
    assert history.epoch == [1, 2, 3]
    for name in ("train_loss", "train_acc", "val_loss", "val_acc",
                 "epoch_time"):
        assert len(getattr(history, name)) == 3, name
    assert history.lr == pytest.approx([0.1, 0.05, 0.025])
    assert history.steps == list(range(1, 25))
    assert len(history.step_loss) == 24
    assert all(isinstance(v, float) for v in history.step_loss)
    # the epoch's training loss is the mean of its steps, weighted by size
    sizes = [32] * 7 + [26]
    assert history.train_loss[0] == pytest.approx(
        np.dot(history.step_loss[:8], sizes) / 250)
    assert "3 epochs" in repr(history)


def test_without_validation_the_validation_lists_stay_empty():
    X, y = blobs(100, np.random.default_rng(2))
    history = train(small_net(), X, y)
    assert history.val_loss == history.val_acc == []
    assert len(history.train_acc) == 2


def test_callbacks_are_called_in_order_with_the_right_counts():
    X, y = blobs(100, np.random.default_rng(3))    # 4 batches of 32
    recorder = Recorder()
    train(small_net(), X, y, callbacks=[recorder])
    expected = [("train_begin", 0, 0)]
    for epoch in (1, 2):
        expected.append(("epoch_begin", epoch, 0))
        expected += [("batch_end", epoch, step) for step in range(1, 5)]
        expected.append(("epoch_end", epoch, 4))
    expected.append(("train_end", 2, 4))
    assert recorder.calls == expected


def test_state_counts_steps_and_shows_the_batch():
    X, y = blobs(100, np.random.default_rng(4))
    states = []

    class Spy(Callback):
        def on_batch_end(self, state):
            states.append((state.steps_per_epoch, state.total_steps,
                           state.num_epochs, state.batch_loss,
                           state.batch_acc, state.lr))

    history = train(small_net(), X, y, lr=0.05, num_epochs=3,
                    callbacks=[Spy()])
    assert len(states) == 12
    assert {s[:3] for s in states} == {(4, 12, 3)}
    assert [s[3] for s in states] == history.step_loss
    assert all(0 <= s[4] <= 1 for s in states)
    assert {s[5] for s in states} == {0.05}


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning",
                            "ignore:invalid value:RuntimeWarning")
def test_nan_loss_stops_with_epoch_step_and_hint(capsys):
    rng = np.random.default_rng(5)
    X, y = blobs(200, rng)                  # 7 steps an epoch
    X[:, 0] *= 1e3                          # large inputs: large gradients
    model, recorder = small_net(), Recorder()
    opt = SGD(model.parameters(), 0.01)
    kept = []

    class Keep(Callback):
        def on_batch_end(self, state):
            kept.append(weights(state.model))

    class Explode:                          # a schedule gone wrong
        def step(self):
            opt.lr = 1e4

    history = fit(model, CrossEntropyLoss(), opt, (X, y), num_epochs=5,
                  batch_size=32, rng=rng, scheduler=Explode(),
                  callbacks=[recorder, Keep()])
    assert history.stop_reason == "nan"
    match = re.search(r"at epoch (\d+), step (\d+)", history.message)
    epoch, step = int(match[1]), int(match[2])
    assert epoch == 2 and history.epoch == [1]
    assert len(history.steps) == 7 + step
    assert not np.isfinite(history.step_loss[-1])
    assert np.isfinite(history.step_loss[:-1]).all()
    assert "learning rate (10000.0) is probably too high" in history.message
    assert history.message in capsys.readouterr().err
    assert recorder.calls[-1][0] == "train_end"
    # the step with the bad loss did not change the weights
    for now, before in zip(weights(model), kept[-1]):
        np.testing.assert_array_equal(now, before)


def test_an_infinite_loss_stops_training_too(capsys):
    """Not only NaN: a loss of +inf stops training before its step."""
    X, y = blobs(100, np.random.default_rng(5))     # 4 steps an epoch

    class InfiniteAtStep3(CrossEntropyLoss):
        calls = 0

        def forward(self, logits, y):
            loss = super().forward(logits, y)
            self.calls += 1
            return math.inf if self.calls == 3 else loss

    model, kept = small_net(), []

    class Keep(Callback):
        def on_batch_end(self, state):
            kept.append(weights(state.model))

    history = fit(model, InfiniteAtStep3(), SGD(model.parameters(), 0.1),
                  (X, y), num_epochs=2, batch_size=32,
                  rng=np.random.default_rng(0), callbacks=[Keep()])
    assert history.stop_reason == "nan"
    assert "loss became inf at epoch 1, step 3" in history.message
    assert history.step_loss[-1] == math.inf and len(history.steps) == 3
    assert history.epoch == [] and len(kept) == 2
    for now, before in zip(weights(model), kept[-1]):
        np.testing.assert_array_equal(now, before)


def test_fit_clears_the_gradients_before_each_step():
    """Backward passes add to .grad (as in PyTorch), so fit calls
    zero_grad() each step: after three steps on the same batch the
    gradients are one batch's, not three."""
    rng = np.random.default_rng(9)
    X, y = blobs(32, rng)
    model = small_net()
    fit(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.0), (X, y),
        num_epochs=3, batch_size=32, rng=rng)
    after_fit = [p.grad.copy() for p in model.parameters()]
    assert model.input_grad        # fit's setting is undone
    model.zero_grad()
    loss = CrossEntropyLoss()
    loss(model.forward(X), y)
    model.backward(loss.backward())
    for got, p in zip(after_fit, model.parameters()):
        np.testing.assert_allclose(got, p.grad, rtol=1e-4, atol=1e-7)


def test_keyboard_interrupt_keeps_model_and_history(capsys):
    X, y = blobs(100, np.random.default_rng(6))    # 4 steps an epoch
    model, stop, recorder = small_net(), StopAt(epoch=2, step=3), Recorder()
    start = weights(model)
    history = train(model, X, y, num_epochs=4, callbacks=[stop, recorder])
    assert history.stop_reason == "interrupted"
    assert "epoch 2, step 3" in history.message
    assert history.message in capsys.readouterr().err
    assert history.epoch == [1]
    assert len(history.step_loss) == 7
    assert recorder.calls[-1][0] == "train_end"
    assert model.training
    # the model has the weights of the last step, not the initial ones
    for now, last, first in zip(weights(model), stop.seen[-1], start):
        np.testing.assert_array_equal(now, last)
        assert not np.array_equal(now, first)


def test_fit_trains_in_training_mode_and_restores_the_mode():
    rng = np.random.default_rng(7)
    X, y = blobs(64, rng)
    model = Sequential(Linear(2, 8, rng=rng), BatchNorm1d(8), ReLU(),
                       Linear(8, 3, rng=rng))
    modes = []

    class Mode(Callback):
        def on_batch_end(self, state):
            modes.append(state.model[1].training)

    model.eval()
    train(model, X, y, callbacks=[Mode()])
    assert modes and all(modes)
    assert not model.training and not model[1].training


@pytest.mark.parametrize("training", [True, False])
def test_predict_and_evaluate_use_eval_mode_and_restore_it(training):
    rng = np.random.default_rng(8)
    X, y = blobs(50, rng)
    model = Sequential(Linear(2, 8, rng=rng), BatchNorm1d(8), ReLU(),
                       Dropout(0.5, rng=rng), Linear(8, 3, rng=rng))
    model[1].running_mean[:] = rng.standard_normal(8)
    running = model[1].running_mean.copy()
    model.train(training)
    logits = predict(model, X, batch_size=7)       # 8 batches, the last of 1
    assert model.training is training and model[4].training is training
    np.testing.assert_array_equal(model[1].running_mean, running)
    expected = model.eval().forward(X)             # no dropout, running stats
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)

    model.train(training)
    loss, acc = evaluate(model, X, y, batch_size=16)
    assert model.training is training
    assert loss == pytest.approx(CrossEntropyLoss().forward(expected, y),
                                 rel=1e-5)
    assert acc == np.mean(expected.argmax(axis=1) == y)


@pytest.mark.parametrize("workers", [2, 3])
def test_predict_in_parallel_matches_one_worker_and_repeats(workers):
    rng = np.random.default_rng(10)
    X, _ = blobs(103, rng)
    model = Sequential(Linear(2, 16, rng=rng), BatchNorm1d(16), ReLU(),
                       Linear(16, 3, rng=rng))
    model[1].running_var[:] = rng.uniform(0.5, 2.0, 16)
    before = [p.data.copy() for p in model.parameters()]
    one = predict(model, X, batch_size=10, workers=1)
    many = predict(model, X, batch_size=10, workers=workers)   # 11 batches
    assert many.shape == one.shape and model.training
    np.testing.assert_allclose(many, one, rtol=1e-5, atol=1e-6)
    # each batch is computed alike on any thread: no run-to-run variation
    np.testing.assert_array_equal(
        predict(model, X, batch_size=10, workers=workers), many)
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, b)
    with pytest.raises(ValueError, match="workers"):
        predict(model, X, workers=0)


def test_predict_in_parallel_keeps_the_callers_errstate(recwarn):
    model = Sequential(Linear(2, 3, rng=np.random.default_rng(0)))
    model[0].weight.data[:] = 3e38                       # overflows float32
    X = np.ones((40, 2), np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        logits = predict(model, X, batch_size=10, workers=2)
    assert np.isinf(logits).all()
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_augment_sees_every_training_batch():
    rng = np.random.default_rng(9)
    X, y = blobs(100, rng)
    seen = []

    def augment(X_batch, generator):
        seen.append(len(X_batch))
        assert generator is rng
        return X_batch + generator.normal(0, 0.1, X_batch.shape)

    model = small_net()
    fit(model, CrossEntropyLoss(), SGD(model.parameters(), 0.1), (X, y),
        (X, y), num_epochs=2, batch_size=32, rng=rng, augment=augment)
    assert seen == [32, 32, 32, 4] * 2     # validation is not augmented


def test_the_generator_decides_the_order():
    X, y = blobs(200, np.random.default_rng(10))
    a = train(small_net(), X, y, seed=1).step_loss
    b = train(small_net(), X, y, seed=1).step_loss
    c = train(small_net(), X, y, seed=2).step_loss
    assert a == b
    assert a != c


@pytest.mark.parametrize("change, error, words", [
    (dict(train_data="not a pair"), TypeError, "pair (X, y)"),
    (dict(train_data=(np.zeros((5, 2)), np.zeros(4, int))), ValueError,
     "5 examples need 5 labels"),
    (dict(train_data=(np.zeros((5, 2)), np.zeros(5))), TypeError,
     "integer class indices"),
    (dict(val_data=(np.zeros((0, 2)), np.zeros(0, int))), ValueError,
     "val_data is empty"),
    (dict(batch_size=0), ValueError, "batch_size must be an integer >= 1"),
    (dict(num_epochs=1.5), ValueError, "num_epochs must be an integer"),
    (dict(rng=0), TypeError, "np.random.default_rng(0)"),
])
def test_bad_arguments_are_named(change, error, words):
    model = small_net()
    X, y = blobs(10, np.random.default_rng(11))
    kwargs = dict(train_data=(X, y), val_data=None, num_epochs=1,
                  batch_size=4, rng=np.random.default_rng(0))
    kwargs.update(change)
    with pytest.raises(error) as info:
        fit(model, CrossEntropyLoss(), SGD(model.parameters(), 0.1), **kwargs)
    assert words in str(info.value)


def test_a_callback_stops_training_cleanly():
    """state.stop_training ends fit after that hook: mid-epoch the partial
    epoch is not recorded; at an epoch's end that epoch is."""
    class StopAt(Callback):
        def __init__(self, hook, epoch, step=None):
            self.hook, self.epoch, self.step = hook, epoch, step

        def on_batch_end(self, state):
            if self.hook == "batch" and state.epoch == self.epoch \
                    and state.step == self.step:
                state.stop_training = True

        def on_epoch_end(self, state):
            if self.hook == "epoch" and state.epoch == self.epoch:
                state.stop_training = True

    X, y = blobs(40, np.random.default_rng(12))
    for stop, epochs, steps in ((StopAt("batch", 2, 3), 1, 8),
                                (StopAt("epoch", 2), 2, 10)):
        model = small_net()
        h = fit(model, CrossEntropyLoss(), SGD(model.parameters(), 0.1),
                (X, y), num_epochs=5, batch_size=8,
                rng=np.random.default_rng(0), callbacks=[stop])
        assert h.stop_reason == "stopped"
        assert "stopped by a callback" in h.message
        assert len(h.epoch) == epochs and len(h.steps) == steps


def test_fit_trains_an_autograd_model_with_its_step():
    """Chapter 7's loop is fit's: the autograd step gives the same losses
    as the layer API's step, from the same weights and batches."""
    from nnlib import autograd as ag
    X, y = blobs(48, np.random.default_rng(13))
    losses = []
    for use_autograd in (False, True):
        model = small_net()
        if use_autograd:
            model = ag.from_nnlib(model)
            h = fit(model, ag.cross_entropy, ag.SGD(model.parameters(), 0.1),
                    (X, y), num_epochs=2, batch_size=16,
                    rng=np.random.default_rng(0), step=ag.train_step)
        else:
            h = fit(model, CrossEntropyLoss(), SGD(model.parameters(), 0.1),
                    (X, y), num_epochs=2, batch_size=16,
                    rng=np.random.default_rng(0))
        assert h.stop_reason == "completed" and len(h.steps) == 6
        losses.append(h.step_loss)
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)
