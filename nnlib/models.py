"""The book's networks, each built by a function that returns a ``Sequential``.

Every function takes the random generator that initialises the weights, so
two calls with generators seeded alike build identical networks.
"""
import numpy as np

from .init import _check_rng
from .layers import (BatchNorm1d, BatchNorm2d, Conv2d, Flatten, Linear,
                     MaxPool2d, ReLU, Sequential, Sigmoid, Tanh)

ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}


def mlp(sizes=(784, 256, 64, 10), *, rng, init="he", activation="relu",
        dtype=np.float32, batchnorm=False):
    """A fully connected network: Linear layers of the given sizes.

    With the default sizes, for a batch of N flattened images::

        (N, 784) -> Linear(784, 256) -> ReLU -> (N, 256)
                 -> Linear(256, 64)  -> ReLU -> (N, 64)
                 -> Linear(64, 10)           -> (N, 10) logits

    Each hidden Linear layer is followed by ``BatchNorm1d`` (if
    ``batchnorm``) and the ``activation`` ('relu', 'tanh' or 'sigmoid');
    the last one gives the logits, with no activation (the loss applies
    softmax).
    ``init`` names the weight initialiser (see ``nnlib.init.get``).
    """
    _check_rng(rng)
    if len(sizes) < 2:
        raise ValueError("sizes must list at least the input and output "
                         f"sizes, e.g. (784, 10); got {sizes!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of "
                         f"{sorted(ACTIVATIONS)}")
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(n_in, n_out, init=init, rng=rng, dtype=dtype))
        if i < len(sizes) - 2:          # a hidden layer
            if batchnorm:
                layers.append(BatchNorm1d(n_out, dtype=dtype))
            layers.append(ACTIVATIONS[activation]())
    return Sequential(*layers)


def seed_cnn(*, rng, batchnorm=True, init="he", dtype=np.float32):
    """The seed project's CNN: two convolution blocks and a linear layer.

    For a batch of N images (N, 1, 28, 28)::

        Conv2d(1, 16, 5)   -> (N, 16, 24, 24)   28 - 5 + 1 = 24
        BatchNorm2d(16), ReLU
        MaxPool2d(2)       -> (N, 16, 12, 12)
        Conv2d(16, 32, 5)  -> (N, 32, 8, 8)     12 - 5 + 1 = 8
        BatchNorm2d(32), ReLU
        MaxPool2d(2)       -> (N, 32, 4, 4)
        Flatten            -> (N, 512)          32 * 4 * 4 = 512
        Linear(512, 10)    -> (N, 10) logits

    ``batchnorm=False`` leaves out the two BatchNorm2d layers.
    """
    _check_rng(rng)

    def block(c_in, c_out):
        conv = Conv2d(c_in, c_out, 5, init=init, rng=rng, dtype=dtype)
        norm = [BatchNorm2d(c_out, dtype=dtype)] if batchnorm else []
        return [conv, *norm, ReLU(), MaxPool2d(2)]

    return Sequential(*block(1, 16), *block(16, 32), Flatten(),
                      Linear(512, 10, init=init, rng=rng, dtype=dtype))
