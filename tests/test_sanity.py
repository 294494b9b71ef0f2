"""Sanity run (CS231n's advice): a small CNN must be able to overfit a few
hundred real MNIST images. If it cannot, something in the forward pass,
the backward pass or the optimiser is broken, whatever the unit tests say."""
import numpy as np
import pytest

from nnlib import layers as L
from nnlib.data import load_mnist, normalize
from nnlib.losses import CrossEntropyLoss
from nnlib.optim import Adam


@pytest.mark.mnist
def test_small_cnn_overfits_300_real_images():
    X_train, y_train, _, _ = load_mnist(verbose=False)
    X, y = normalize(X_train[:300]), y_train[:300].astype(np.int64)
    rng = np.random.default_rng(0)
    model = L.Sequential(
        L.Conv2d(1, 8, 5, rng=rng), L.BatchNorm2d(8), L.ReLU(),
        L.MaxPool2d(2), L.Flatten(), L.Linear(8 * 12 * 12, 10, rng=rng))
    loss_fn = CrossEntropyLoss()
    optimizer = Adam(model.parameters(), lr=2e-3)
    model.input_grad = False            # the images need no gradient
    for epoch in range(15):
        for i in rng.permutation(300).reshape(-1, 50):
            loss_fn(model.forward(X[i]), y[i])
            optimizer.zero_grad()
            model.backward(loss_fn.backward())
            optimizer.step()
    model.eval()
    accuracy = np.mean(model.forward(X).argmax(axis=1) == y)
    assert accuracy >= 0.99, f"training accuracy {accuracy:.2%} after 15 epochs"
