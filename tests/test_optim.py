"""Optimisers against updates worked out by hand, and the schedules."""
import math

import numpy as np
import pytest

from nnlib.layers import Linear, Parameter
from nnlib.optim import (SGD, Adagrad, Adam, AdamW,
                         CosineAnnealingLR, ExponentialLR, MultiStepLR,
                         RMSprop, StepLR)


def scalar(value, dtype=np.float64):
    """A one-entry parameter, so that each update can be followed by hand."""
    return Parameter(np.array([value], dtype))


def run(optimizer, p, grads):
    """Take one step per gradient; return the parameter after each step."""
    values = []
    for g in grads:
        p.grad[...] = g
        optimizer.step()
        values.append(float(p.data[0]))
    return values


# -- SGD --------------------------------------------------------------------
def test_sgd_plain_and_weight_decay():
    p = scalar(2.0)
    # g = 1 + 0.1 * 2 = 1.2;  p = 2 - 0.1 * 1.2 = 1.88
    assert run(SGD([p], lr=0.1, weight_decay=0.1), p, [1.0]) == \
        pytest.approx([1.88])


def test_sgd_momentum_by_hand():
    p = scalar(1.0)
    # step 1: v = 0.9 * 0 + 1 = 1;    p = 1 - 0.1 * 1 = 0.9
    # step 2: v = 0.9 * 1 + 1 = 1.9;  p = 0.9 - 0.1 * 1.9 = 0.71
    assert run(SGD([p], lr=0.1, momentum=0.9), p, [1.0, 1.0]) == \
        pytest.approx([0.9, 0.71])


def test_sgd_nesterov_by_hand():
    p = scalar(1.0)
    # step 1: v = 1;    g = 1 + 0.9 * 1 = 1.9;     p = 1 - 0.19 = 0.81
    # step 2: v = 1.9;  g = 1 + 0.9 * 1.9 = 2.71;  p = 0.81 - 0.271 = 0.539
    opt = SGD([p], lr=0.1, momentum=0.9, nesterov=True)
    assert run(opt, p, [1.0, 1.0]) == pytest.approx([0.81, 0.539])


def test_sgd_weight_decay_comes_before_momentum():
    p = scalar(1.0)
    # decay is added to the gradient, and the sum goes into the velocity:
    # step 1: g = 1 + 0.1 * 1 = 1.1;       v = 1.1;
    #         p = 1 - 0.1 * 1.1 = 0.89
    # step 2: g = 1 + 0.1 * 0.89 = 1.089;  v = 0.9 * 1.1 + 1.089 = 2.079;
    #         p = 0.89 - 0.1 * 2.079 = 0.6821
    # (decay added after the momentum would give 0.6911 at step 2)
    opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1)
    assert run(opt, p, [1.0, 1.0]) == pytest.approx([0.89, 0.6821])


def test_sgd_errors():
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([scalar(0.0)], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="learning rate"):
        SGD([scalar(0.0)], lr=-1)
    with pytest.raises(ValueError, match="no parameters"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="Parameter"):
        SGD([np.zeros(3)], lr=0.1)


# -- AdaGrad and RMSprop ------------------------------------------------------
def test_adagrad_by_hand():
    p = scalar(1.0)
    opt = Adagrad([p], lr=0.1)
    # step 1, g = 2:   s = 4;      p = 1 - 0.1 * 2 / 2 = 0.9
    # step 2, g = -1:  s = 4 + 1;  p = 0.9 + 0.1 / sqrt(5) = 0.94472136
    assert run(opt, p, [2.0, -1.0]) == pytest.approx([0.9, 0.94472136])


def test_adagrad_lr_decay_accumulator_and_weight_decay():
    p = scalar(1.0)
    opt = Adagrad([p], lr=0.1, lr_decay=0.5, weight_decay=0.5,
                  initial_accumulator_value=5.0)
    # step 1: g = 1 + 0.5 * 1 = 1.5;  s = 5 + 2.25 = 7.25;  clr = 0.1
    #         p = 1 - 0.1 * 1.5 / sqrt(7.25) = 0.94429140
    # step 2: g = 1 + 0.5 * 0.94429140 = 1.47214570;  s = 9.41721296
    #         clr = 0.1 / (1 + 0.5) = 0.06666667
    #         p = 0.94429140 - 0.06666667 * 1.47214570 / 3.06874778
    #           = 0.91230993
    assert run(opt, p, [1.0, 1.0]) == pytest.approx([0.94429140, 0.91230993])
    assert opt.t == 2


def test_rmsprop_by_hand():
    p = scalar(1.0)
    opt = RMSprop([p], lr=0.01, alpha=0.9, eps=0.0)
    # step 1, g = 2:   v = 0.1 * 4 = 0.4;
    #                  p = 1 - 0.01 * 2 / sqrt(0.4) = 0.96837722
    # step 2, g = -1:  v = 0.9 * 0.4 + 0.1 * 1 = 0.46
    #                  p = 0.96837722 + 0.01 / sqrt(0.46) = 0.98312146
    assert run(opt, p, [2.0, -1.0]) == pytest.approx([0.96837722,
                                                      0.98312146])


def test_rmsprop_momentum_centered_and_weight_decay():
    p = scalar(1.0)
    opt = RMSprop([p], lr=0.01, alpha=0.5, eps=0.0, momentum=0.9,
                  centered=True, weight_decay=1.0)
    # step 1: g = 1 + 1 = 2;  v = 0.5 * 4 = 2;  a = 0.5 * 2 = 1
    #         d = sqrt(2 - 1) = 1;  b = 2;  p = 1 - 0.01 * 2 = 0.98
    # step 2: g = 3 + 0.98 = 3.98;  v = 1 + 0.5 * 15.8404 = 8.9202
    #         a = 0.5 + 1.99 = 2.49;  d = sqrt(8.9202 - 6.2001) = 1.64927
    #         b = 0.9 * 2 + 3.98 / 1.64927 = 4.21322
    #         p = 0.98 - 0.0421322 = 0.9378678
    assert run(opt, p, [1.0, 3.0]) == pytest.approx([0.98, 0.9378678],
                                                    abs=1e-6)


def test_rmsprop_first_step_is_lr_over_sqrt_one_minus_alpha():
    # no bias correction: v = (1 - alpha) g**2, so |step| = lr / sqrt(0.01)
    p = scalar(0.0)
    assert run(RMSprop([p], lr=0.01), p, [3.0]) == pytest.approx([-0.1])


@pytest.mark.parametrize("kind", [SGD, Adagrad, RMSprop, Adam, AdamW])
def test_every_optimiser_refuses_a_negative_weight_decay(kind):
    with pytest.raises(ValueError, match="weight_decay must be >= 0, got -1"):
        kind([scalar(0.0)], lr=0.1, weight_decay=-1)


def test_adagrad_and_rmsprop_errors():
    with pytest.raises(ValueError, match="alpha"):
        RMSprop([scalar(0.0)], alpha=1.0)
    with pytest.raises(ValueError, match="momentum"):
        RMSprop([scalar(0.0)], momentum=-0.1)
    with pytest.raises(ValueError, match="lr_decay"):
        Adagrad([scalar(0.0)], lr_decay=-1)
    with pytest.raises(ValueError, match="learning rate"):
        Adagrad([scalar(0.0)], lr=-1)


# -- Adam -------------------------------------------------------------------
def test_adam_first_two_steps_by_hand():
    p = scalar(1.0)
    opt = Adam([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    # step 1 (t = 1), g = 2:
    #   m = 0.1 * 2 = 0.2            m_hat = 0.2 / (1 - 0.9)     = 2
    #   v = 0.001 * 4 = 0.004        v_hat = 0.004 / (1 - 0.999) = 4
    #   p = 1 - 0.1 * 2 / (sqrt(4) + 1e-8) = 0.9 (to 5e-10)
    # step 2 (t = 2), g = -1:
    #   m = 0.9 * 0.2 + 0.1 * (-1) = 0.08
    #   v = 0.999 * 0.004 + 0.001 * 1 = 0.004996
    #   m_hat = 0.08 / (1 - 0.9**2) = 0.08 / 0.19 = 0.42105263
    #   v_hat = 0.004996 / (1 - 0.999**2) = 0.004996 / 0.001999 = 2.49924962
    #   p = 0.9 - 0.1 * 0.42105263 / 1.58090152 = 0.87336630
    assert run(opt, p, [2.0, -1.0]) == pytest.approx([0.9, 0.8733663],
                                                     abs=1e-7)
    assert opt.t == 2


def test_adam_adds_eps_outside_the_square_root():
    # a tiny gradient, g = 1e-6: m_hat = g and v_hat = g**2 at step 1, so
    #   p = 0 - 0.1 * 1e-6 / (sqrt(1e-12) + 1e-8) = -0.1 / 1.01 = -0.0990099
    # (with eps inside, sqrt(1e-12 + 1e-8) ~ 1e-4: a step 100x too small)
    p = scalar(0.0)
    assert run(Adam([p], lr=0.1), p, [1e-6]) == pytest.approx([-0.0990099])
    # a large eps: p = 1 - 0.1 * 2 / (sqrt(4) + 0.5) = 0.92
    p = scalar(1.0)
    assert run(Adam([p], lr=0.1, eps=0.5), p, [2.0]) == pytest.approx([0.92])


def test_adam_l2_is_rescaled_but_adamw_decay_is_not():
    # Adam adds 0.5 * p to g: g = 2 + 0.5 = 2.5, and the first step is
    # lr * 2.5 / sqrt(2.5**2) = lr: the decay has vanished.
    p = scalar(1.0)
    assert run(Adam([p], lr=0.1, weight_decay=0.5), p, [2.0]) == \
        pytest.approx([0.9])
    # AdamW first shrinks p: 1 * (1 - 0.1 * 0.5) = 0.95, then steps by lr.
    p = scalar(1.0)
    assert run(AdamW([p], lr=0.1, weight_decay=0.5), p, [2.0]) == \
        pytest.approx([0.85])


def test_adamw_with_zero_gradient_only_decays():
    p = Parameter(np.array([4.0, -2.0]))
    opt = AdamW([p], lr=0.1, weight_decay=0.01)
    for _ in range(3):
        opt.step()          # the gradient stays 0: m = v = 0
    # each step: p = p - 0.1 * 0.01 * p = 0.999 * p
    np.testing.assert_allclose(p.data, np.array([4.0, -2.0]) * 0.999 ** 3)


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-4),
    lambda ps: Adam(ps, weight_decay=1e-4),
    lambda ps: AdamW(ps),
    lambda ps: Adagrad(ps, weight_decay=1e-4),
    lambda ps: RMSprop(ps, momentum=0.9, centered=True, weight_decay=1e-4),
])
def test_updates_are_in_place_and_keep_float32(make):
    layer = Linear(3, 2, rng=np.random.default_rng(0))
    weight = layer.weight.data
    before = weight.copy()
    opt = make(layer.parameters())
    layer.weight.grad[...] = 1.0
    opt.step()
    assert layer.weight.data is weight and weight.dtype == np.float32
    assert np.all(weight < before)
    opt.zero_grad()
    assert not layer.weight.grad.any() and not layer.bias.grad.any()


def test_adam_rejects_bad_betas():
    with pytest.raises(ValueError, match="betas"):
        Adam([scalar(0.0)], betas=(0.9, 1.0))


# -- schedules --------------------------------------------------------------
def lrs(make_scheduler, lr, num_epochs):
    """The learning rate in force during each epoch, as a training loop
    sees it when it calls scheduler.step() at the end of every epoch."""
    opt = SGD([scalar(0.0)], lr=lr)
    scheduler = make_scheduler(opt)
    seen = []
    for _ in range(num_epochs):
        seen.append(opt.lr)
        scheduler.step()
        assert scheduler.get_last_lr() == opt.lr
    assert scheduler.base_lr == lr
    return seen


def test_step_lr_like_pytorch():
    # torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1), lr = 1
    assert lrs(lambda o: StepLR(o, step_size=2, gamma=0.1), 1.0, 5) == \
        pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01])


def test_multistep_lr_like_pytorch_docs():
    # PyTorch's docstring: lr = 0.05 if epoch < 30, 0.005 if 30 <= epoch
    # < 80, 0.0005 if epoch >= 80
    seen = lrs(lambda o: MultiStepLR(o, milestones=[80, 30]), 0.05, 100)
    assert seen == pytest.approx([0.05] * 30 + [0.005] * 50 + [0.0005] * 20)


def test_exponential_lr_is_the_closed_form_without_drift():
    seen = lrs(lambda o: ExponentialLR(o, gamma=0.1), 1.0, 101)
    # multiplying by 0.1 a hundred times would give 1.000000000000006e-100
    assert seen[100] == 0.1 ** 100
    assert seen[:3] == pytest.approx([1.0, 0.1, 0.01])


def test_cosine_annealing():
    # eta_min + (base - eta_min) * (1 + cos(pi * e / 4)) / 2, base 1, min 0
    seen = lrs(lambda o: CosineAnnealingLR(o, T_max=4), 1.0, 5)
    assert seen == pytest.approx([1.0, 0.8535534, 0.5, 0.1464466, 0.0])
    seen = lrs(lambda o: CosineAnnealingLR(o, T_max=10, eta_min=0.1),
               1.0, 11)
    assert seen[5] == pytest.approx(0.55) and seen[10] == pytest.approx(0.1)
    assert seen[1] == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 10))
                                    / 2)


def test_the_optimizer_uses_the_scheduled_rate():
    p = scalar(1.0)
    opt = SGD([p], lr=1.0)
    scheduler = StepLR(opt, step_size=1, gamma=0.5)
    scheduler.step()
    assert run(opt, p, [1.0]) == pytest.approx([0.5])   # 1 - 0.5 * 1


def test_schedule_errors():
    opt = SGD([scalar(0.0)], lr=0.1)
    with pytest.raises(ValueError, match="step_size"):
        StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="milestones"):
        MultiStepLR(opt, milestones=[0.5])
    with pytest.raises(ValueError, match="gamma"):
        ExponentialLR(opt, gamma=0)
    with pytest.raises(ValueError, match="T_max"):
        CosineAnnealingLR(opt, T_max=0)
