"""Weight initialisers: spread, fans, dtype and the generator they need."""
import math

import numpy as np
import pytest

from nnlib import init

LINEAR = (256, 512)        # (out_features, in_features): fan_in 512, out 256
CONV = (64, 32, 5, 5)      # (out, in, kH, kW): fan_in 800, fan_out 1600


@pytest.mark.parametrize("fn, shape, std", [
    (init.normal, LINEAR, 1.0),
    (init.scaled_uniform, LINEAR, 0.1 / math.sqrt(3)),  # U(-a, a): a/sqrt(3)
    (init.xavier_normal, LINEAR, math.sqrt(2 / (512 + 256))),
    (init.xavier_uniform, LINEAR, math.sqrt(2 / (512 + 256))),
    (init.he_normal, LINEAR, math.sqrt(2 / 512)),
    (init.he_uniform, LINEAR, math.sqrt(2 / 512)),
    (init.xavier_normal, CONV, math.sqrt(2 / (800 + 1600))),
    (init.he_normal, CONV, math.sqrt(2 / 800)),
    (init.he_uniform, CONV, math.sqrt(2 / 800)),
])
def test_spread_of_each_initialiser(fn, shape, std):
    w = fn(shape, np.random.default_rng(0))
    assert w.shape == shape and w.dtype == np.float32
    # over 131,072 (or 51,200) samples the sample std is within about 1%
    assert w.std() == pytest.approx(std, rel=0.02)
    assert abs(w.mean()) < 0.02 * std


@pytest.mark.parametrize("fn, bound", [
    (init.scaled_uniform, 0.1),
    (init.xavier_uniform, math.sqrt(6 / (800 + 1600))),
    (init.he_uniform, math.sqrt(6 / 800)),
])
def test_uniform_initialisers_stay_in_their_bounds(fn, bound):
    w = fn(CONV, np.random.default_rng(0))
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.99 * bound


@pytest.mark.parametrize("shape, expected", [
    ((16, 1, 5, 5), (25, 400)),     # the chapters' first convolution
    ((32, 16, 5, 5), (400, 800)),   # and the second
    ((10, 512), (512, 10)),         # a Linear weight (out, in)
])
def test_fans_as_pytorch_computes_them(shape, expected):
    assert init.fans(shape) == expected


def test_fans_need_two_dimensions():
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.fans((10,))


@pytest.mark.parametrize("fn", [init.normal, init.scaled_uniform,
                                init.xavier_normal, init.xavier_uniform,
                                init.he_normal, init.he_uniform])
def test_a_generator_is_required(fn):
    with pytest.raises(TypeError, match="default_rng"):
        fn((3, 4), 0)
    with pytest.raises(TypeError, match="default_rng"):
        fn((3, 4), None)


def test_float64_on_request_and_same_seed_same_weights():
    a = init.he_normal((3, 4), np.random.default_rng(7), dtype=np.float64)
    b = init.he_normal((3, 4), np.random.default_rng(7), dtype=np.float64)
    assert a.dtype == np.float64
    np.testing.assert_array_equal(a, b)


def test_get_by_name_or_callable():
    assert init.get("he") is init.he_normal
    assert init.get("xavier") is init.xavier_normal
    assert init.get(init.he_uniform) is init.he_uniform
    with pytest.raises(ValueError, match="unknown initialiser 'kaiming'"):
        init.get("kaiming")
