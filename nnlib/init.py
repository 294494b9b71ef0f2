"""Weight initialisers: N(0, 1), scaled uniform, Xavier/Glorot and He/Kaiming.

Each takes the weight's shape and an explicit ``np.random.Generator``.
Fans are computed as PyTorch computes them: for a weight of shape
(out, in, *kernel), ``fan_in = in * prod(kernel)`` and
``fan_out = out * prod(kernel)``.
"""
import math

import numpy as np


def fans(shape):
    """(fan_in, fan_out) of a Linear (out, in) or Conv2d (out, in, kH, kW) weight."""
    if len(shape) < 2:
        raise ValueError(f"fans need a weight of 2 or more dimensions, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _check_rng(rng):
    if not isinstance(rng, np.random.Generator):
        raise TypeError("pass a generator, e.g. rng=np.random.default_rng(0); "
                        f"got {type(rng).__name__}")
    return rng


def normal(shape, rng, std=1.0, dtype=np.float32):
    """N(0, std^2). With std=1 (the default) this is the seed's ``randn``."""
    return (_check_rng(rng).standard_normal(shape) * std).astype(dtype)


def scaled_uniform(shape, rng, scale=0.1, dtype=np.float32):
    """U(-scale, scale): ``(rand(shape) * 2 - 1) * scale``."""
    return _check_rng(rng).uniform(-scale, scale, shape).astype(dtype)


def xavier_normal(shape, rng, dtype=np.float32):
    """Glorot & Bengio (2010): N(0, 2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    return normal(shape, rng, math.sqrt(2.0 / (fan_in + fan_out)), dtype)


def xavier_uniform(shape, rng, dtype=np.float32):
    """Glorot & Bengio (2010): U(-a, a), a = sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    return scaled_uniform(shape, rng, math.sqrt(6.0 / (fan_in + fan_out)), dtype)


def he_normal(shape, rng, dtype=np.float32):
    """He et al. (2015), for ReLU: N(0, 2 / fan_in)."""
    fan_in, _ = fans(shape)
    return normal(shape, rng, math.sqrt(2.0 / fan_in), dtype)


def he_uniform(shape, rng, dtype=np.float32):
    """He et al. (2015), for ReLU: U(-a, a), a = sqrt(6 / fan_in)."""
    fan_in, _ = fans(shape)
    return scaled_uniform(shape, rng, math.sqrt(6.0 / fan_in), dtype)


INITIALIZERS = {
    "normal": normal,
    "scaled_uniform": scaled_uniform,
    "xavier": xavier_normal,
    "xavier_normal": xavier_normal,
    "xavier_uniform": xavier_uniform,
    "he": he_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
}


def get(init):
    """An initialiser from its name, or the callable itself."""
    if callable(init):
        return init
    try:
        return INITIALIZERS[init]
    except KeyError:
        raise ValueError(f"unknown initialiser {init!r}; choose one of "
                         f"{sorted(INITIALIZERS)} or pass a function "
                         "(shape, rng, dtype) -> array") from None
