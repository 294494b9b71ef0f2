"""Cases shared by the kernel tests (tests/test_kernels.py for the
chapter's kernels, tests/test_fast_kernels.py for the fast ones)."""
import numpy as np

CONV_CASES = [
    # (N, C, H, W, F, k, stride, padding)
    (2, 1, 8, 8, 3, 5, 1, 0),      # one input channel: im2col by planes
    (2, 3, 7, 7, 4, 3, 1, 0),
    (2, 16, 9, 9, 5, 5, 1, 0),     # many channels: im2col by kernel rows
    (3, 5, 9, 8, 2, 3, 2, 1),      # stride, padding, non-square input
    (2, 4, 6, 6, 3, 2, 2, 0),
    (1, 2, 5, 5, 2, 5, 1, 2),
]


def channels_last(x):
    """The same values, laid out N, H, W, C in memory."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


LAYOUTS = [np.ascontiguousarray, channels_last]


def conv_problem(case, layout, seed=0):
    """(x, w, b, dout-shape source rng, stride, padding) for a conv case."""
    n, c, h, w, f, k, s, p = case
    rng = np.random.default_rng(seed)
    x = layout(rng.standard_normal((n, c, h, w)))
    wt = rng.standard_normal((f, c, k, k))
    b = rng.standard_normal(f)
    return rng, x, wt, b, s, p
