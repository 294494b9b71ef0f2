"""Optimisers (SGD, AdaGrad, RMSprop, Adam, AdamW) and learning-rate
schedules.

An optimiser holds a list of ``Parameter`` objects and, on ``step()``,
changes each ``p.data`` in place using ``p.grad``. The update rules are
PyTorch's, written out for one parameter at a time; the names (``lr``,
``momentum``, ``alpha``, ``betas``, ``weight_decay``) are PyTorch's too.

A schedule changes ``optimizer.lr`` once per epoch. Each computes the rate
for epoch ``e`` from a closed form, ``lr_at(e)``, rather than multiplying
the previous rate again and again, so no rounding error piles up.
"""
import bisect
import math
from numbers import Integral

import numpy as np

from .layers import Parameter


class Optimizer:
    """Base class: the parameters, the learning rate, L2 weight decay,
    ``zero_grad``."""

    def __init__(self, params, lr, weight_decay=0.0):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got no parameters; pass "
                             "model.parameters()")
        for p in self.params:
            if not isinstance(p, Parameter):
                raise TypeError(f"{type(self).__name__} needs Parameter "
                                f"objects (model.parameters()), got "
                                f"{type(p).__name__}")
        if not lr >= 0:
            raise ValueError(f"learning rate must be >= 0, got {lr}")
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.lr, self.weight_decay = lr, weight_decay

    def zero_grad(self):
        """Set every gradient to zero (in place)."""
        for p in self.params:
            p.grad[...] = 0

    def step(self):
        """Update every parameter from its gradient."""
        raise NotImplementedError

    def _gradient(self, p):
        """The gradient the update uses: with L2 regularisation, ``g +
        weight_decay * p``, the gradient of the loss plus
        ``weight_decay / 2 * ||p||**2``. The one place every optimiser adds
        it (AdamW, which decays the weights instead, overrides this)."""
        if self.weight_decay:
            return p.grad + self.weight_decay * p.data
        return p.grad

    def _zeros(self):
        """One zero array per parameter: the optimiser's running state."""
        return [np.zeros_like(p.data) for p in self.params]


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum, as torch.optim.SGD.

    For each parameter p with gradient g::

        g = g + weight_decay * p          # L2 regularisation
        v = momentum * v + g              # velocity, starts at 0
        g = g + momentum * v  if nesterov else  v
        p = p - lr * g
    """

    def __init__(self, params, lr, momentum=0.0, nesterov=False,
                 weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        if momentum < 0:
            raise ValueError(f"momentum must be >= 0, got {momentum}")
        if nesterov and momentum == 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.momentum, self.nesterov = momentum, nesterov
        self.velocity = self._zeros() if momentum else None

    def step(self):
        for i, p in enumerate(self.params):
            g = self._gradient(p)
            if self.momentum:
                v = self.velocity[i]
                v *= self.momentum
                v += g
                g = g + self.momentum * v if self.nesterov else v
            p.data -= self.lr * g


class Adagrad(Optimizer):
    """AdaGrad (Duchi, Hazan & Singer, 2011), as torch.optim.Adagrad.

    Each weight gets its own step size, divided by the root of the sum of
    all its squared gradients so far. For each parameter p with gradient g,
    at step t = 1, 2, 3, ...::

        g = g + weight_decay * p                 # L2 regularisation
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g**2                             # starts at
                                                 # initial_accumulator_value
        p = p - clr * g / (sqrt(s) + eps)

    The sum only grows, so the steps only shrink: fine for a convex
    problem, often too cautious late in training a network.
    """

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10):
        super().__init__(params, lr, weight_decay)
        if lr_decay < 0 or eps < 0 or initial_accumulator_value < 0:
            raise ValueError(
                "lr_decay, initial_accumulator_value and eps must be >= 0, "
                f"got {lr_decay}, {initial_accumulator_value} and {eps}")
        self.lr_decay, self.eps = lr_decay, eps
        self.initial_accumulator_value = initial_accumulator_value
        self.sum = [np.full_like(p.data, initial_accumulator_value)
                    for p in self.params]
        self.t = 0

    def step(self):
        self.t += 1
        clr = self.lr / (1 + (self.t - 1) * self.lr_decay)
        for p, s in zip(self.params, self.sum):
            g = self._gradient(p)
            s += g * g
            p.data -= clr * g / (np.sqrt(s) + self.eps)


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture notes, 2012), as torch.optim.RMSprop.

    AdaGrad with a running mean of the squared gradient in place of the
    sum, so that old gradients are forgotten. For each parameter p with
    gradient g::

        g = g + weight_decay * p                 # L2 regularisation
        v = alpha * v + (1 - alpha) * g**2       # starts at 0
        if centered:                             # subtract the squared
            a = alpha * a + (1 - alpha) * g      # mean: a variance
            d = sqrt(v - a**2) + eps
        else:
            d = sqrt(v) + eps
        if momentum:
            b = momentum * b + g / d             # starts at 0
            p = p - lr * b
        else:
            p = p - lr * g / d

    There is no bias correction: the first steps are long (the first is
    ``lr / sqrt(1 - alpha)``, 10 lr for alpha = 0.99). Adam adds it.
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8,
                 weight_decay=0.0, momentum=0.0, centered=False):
        super().__init__(params, lr, weight_decay)
        if not 0 <= alpha < 1:
            raise ValueError(f"alpha must be in [0, 1), got {alpha}")
        if eps < 0 or momentum < 0:
            raise ValueError("eps and momentum must be >= 0, got "
                             f"{eps} and {momentum}")
        self.alpha, self.eps = alpha, eps
        self.momentum, self.centered = momentum, centered
        self.square_avg = self._zeros()
        self.grad_avg = self._zeros() if centered else None
        self.buffer = self._zeros() if momentum else None

    def step(self):
        alpha = self.alpha
        for i, p in enumerate(self.params):
            g = self._gradient(p)
            v = self.square_avg[i]
            v *= alpha
            v += (1 - alpha) * g * g
            if self.centered:
                a = self.grad_avg[i]
                a *= alpha
                a += (1 - alpha) * g
                d = np.sqrt(v - a * a) + self.eps
            else:
                d = np.sqrt(v) + self.eps
            if self.momentum:
                b = self.buffer[i]
                b *= self.momentum
                b += g / d
                p.data -= self.lr * b
            else:
                p.data -= self.lr * g / d


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), as torch.optim.Adam.

    For each parameter p with gradient g, at step t = 1, 2, 3, ...::

        g = g + weight_decay * p            # L2, added to the gradient
        m = beta1 * m + (1 - beta1) * g     # mean of the gradient
        v = beta2 * v + (1 - beta2) * g**2  # mean of its square
        m_hat = m / (1 - beta1**t)          # bias corrections: m and v
        v_hat = v / (1 - beta2**t)          # start at 0, too small at first
        p = p - lr * m_hat / (sqrt(v_hat) + eps)

    ``t`` counts the updates made so far, including this one: the first
    update uses t = 1.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        beta1, beta2 = betas
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        self.betas, self.eps = (beta1, beta2), eps
        self.m, self.v = self._zeros(), self._zeros()
        self.t = 0

    def _bias_corrections(self):
        """(1 - beta1**t, 1 - beta2**t) for the current step t: a method of
        its own so that a variant can change just this (chapter 5 rebuilds
        the seed's off-by-one correction that way)."""
        beta1, beta2 = self.betas
        return 1 - beta1 ** self.t, 1 - beta2 ** self.t

    def step(self):
        self.t += 1
        beta1, beta2 = self.betas
        correction1, correction2 = self._bias_corrections()
        for p, m, v in zip(self.params, self.m, self.v):
            g = self._gradient(p)
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            m_hat = m / correction1
            v_hat = v / correction2
            p.data -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    Instead of adding ``weight_decay * p`` to the gradient, where Adam's
    division by sqrt(v_hat) would rescale it, AdamW shrinks the weights
    directly before the Adam update, as torch.optim.AdamW::

        p = p - lr * weight_decay * p
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=0.01):
        super().__init__(params, lr, betas, eps, weight_decay)

    def _gradient(self, p):
        return p.grad       # decoupled: no L2 term, see step()

    def step(self):
        if self.weight_decay:
            for p in self.params:
                p.data *= 1 - self.lr * self.weight_decay
        super().step()


# ---------------------------------------------------------------------------
# Learning-rate schedules
# ---------------------------------------------------------------------------
class LRScheduler:
    """Base class: sets ``optimizer.lr = lr_at(epoch)`` on each ``step()``.

    Call ``step()`` once at the end of each epoch, as in PyTorch. Before
    the first call the rate is ``lr_at(0)``, the optimiser's own rate,
    which is kept as ``base_lr``.
    """

    def __init__(self, optimizer):
        if not hasattr(optimizer, "lr"):
            raise TypeError(f"{type(self).__name__} needs an optimiser with "
                            f"an lr attribute, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0
        self.optimizer.lr = self._last_lr = self.lr_at(0)

    def lr_at(self, epoch):
        """The learning rate for epoch ``epoch`` (0 is the first)."""
        raise NotImplementedError

    def step(self):
        """Move to the next epoch and set the optimiser's learning rate."""
        self.last_epoch += 1
        self.optimizer.lr = self._last_lr = self.lr_at(self.last_epoch)

    def get_last_lr(self):
        """The rate this schedule last set (a float: nnlib has one group of
        parameters, where PyTorch returns a list with one rate per group)."""
        return self._last_lr


def _check_gamma(gamma):
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    return gamma


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs::

        lr = base_lr * gamma ** (epoch // step_size)
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        if not (isinstance(step_size, Integral) and step_size >= 1):
            raise ValueError(f"step_size must be an integer >= 1, got "
                             f"{step_size!r}")
        self.step_size, self.gamma = step_size, _check_gamma(gamma)
        super().__init__(optimizer)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """Multiply the rate by ``gamma`` at each epoch listed in ``milestones``::

        lr = base_lr * gamma ** (number of milestones <= epoch)
    """

    def __init__(self, optimizer, milestones, gamma=0.1):
        self.milestones = sorted(milestones)
        if any(not isinstance(m, Integral) or m < 1 for m in self.milestones):
            raise ValueError("milestones must be epochs (integers >= 1), got "
                             f"{list(milestones)}")
        self.gamma = _check_gamma(gamma)
        super().__init__(optimizer)

    def lr_at(self, epoch):
        passed = bisect.bisect_right(self.milestones, epoch)
        return self.base_lr * self.gamma ** passed


class ExponentialLR(LRScheduler):
    """Multiply the rate by ``gamma`` every epoch: ``base_lr * gamma**epoch``."""

    def __init__(self, optimizer, gamma):
        self.gamma = _check_gamma(gamma)
        super().__init__(optimizer)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** epoch


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from ``base_lr`` down to ``eta_min`` over ``T_max``
    epochs (Loshchilov & Hutter, 2017, without restarts)::

        lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2

    Past ``T_max`` the cosine climbs again, as in PyTorch: set ``T_max`` to
    the number of epochs.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):
        if not (isinstance(T_max, Integral) and T_max >= 1):
            raise ValueError(f"T_max must be an integer >= 1, got {T_max!r}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def lr_at(self, epoch):
        cosine = (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        return self.eta_min + (self.base_lr - self.eta_min) * cosine
