"""Softmax and the cross-entropy loss of a classifier.

The network's last layer gives one score (a *logit*) per class; softmax turns
a row of logits into probabilities, and cross-entropy is minus the log of the
probability given to the right class, averaged over the batch.

Numerical stability: ``exp`` overflows float32 above about 88. Softmax does
not change when a constant is subtracted from every logit of a row, so we
subtract the row's maximum first: the largest exponent is then exp(0) = 1.
(One of the seed projects left this out, and its loss became NaN as soon as
a logit grew large.)
"""
import numpy as np


def softmax(z, axis=-1):
    """exp(z) / sum(exp(z)) along ``axis``, computed without overflow."""
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(z, axis=-1):
    """log(softmax(z)), computed directly: z - max - log(sum(exp(z - max)))."""
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class CrossEntropyLoss:
    """Softmax cross-entropy, the mean over the batch, as ``nn.CrossEntropyLoss``.

    ``forward(logits, y)`` takes logits of shape (N, C) and integer labels of
    shape (N,) and returns the loss as a Python float. ``backward()`` returns
    d(loss)/d(logits), shape (N, C), in the dtype of the logits.

    With ``label_smoothing=eps`` the target of each example is not the
    one-hot vector but ``(1 - eps) * onehot + eps / C``, as PyTorch defines
    it; ``eps=0`` is plain cross-entropy.

    The gradient is short because softmax and log cancel: for the mean over
    N examples, d(loss)/d(logits) = (softmax(logits) - target) / N.
    """

    def __init__(self, label_smoothing=0.0):
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError("label_smoothing must be in [0, 1], got "
                             f"{label_smoothing}")
        self.label_smoothing = label_smoothing
        self._cache = None

    def __repr__(self):
        if self.label_smoothing:
            return f"CrossEntropyLoss(label_smoothing={self.label_smoothing})"
        return "CrossEntropyLoss()"

    def forward(self, logits, y):
        y = self._check(logits, y)
        n, c = logits.shape
        log_p = log_softmax(logits)
        target = self._target(y, c, logits.dtype)
        self._cache = (np.exp(log_p), target)
        return float(-(target * log_p).sum() / n)

    __call__ = forward

    def backward(self):
        if self._cache is None:
            raise RuntimeError("call forward(logits, y) before backward()")
        probs, target = self._cache
        return (probs - target) / len(probs)

    def _target(self, y, num_classes, dtype):
        """The target distribution of each example, shape (N, C)."""
        eps = self.label_smoothing
        target = np.full((len(y), num_classes), eps / num_classes, dtype)
        target[np.arange(len(y)), y] += 1 - eps
        return target

    @staticmethod
    def _check(logits, y):
        if not isinstance(logits, np.ndarray) or logits.ndim != 2:
            raise ValueError("CrossEntropyLoss: logits must be a 2-D array "
                             "(N examples, C classes), got shape "
                             f"{np.shape(logits)}")
        if not np.issubdtype(logits.dtype, np.floating):
            raise TypeError("CrossEntropyLoss: logits must be floating point, "
                            f"got {logits.dtype}")
        y = np.asarray(y)
        n, c = logits.shape
        if y.shape != (n,):
            raise ValueError(f"CrossEntropyLoss: {n} rows of logits need "
                             f"labels of shape ({n},), got {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise TypeError("CrossEntropyLoss: labels must be integer class "
                            f"indices, got dtype {y.dtype}")
        if n == 0:
            raise ValueError("CrossEntropyLoss: the batch is empty (N = 0)")
        if y.min() < 0 or y.max() >= c:
            raise ValueError(f"CrossEntropyLoss: labels must be in [0, {c}) "
                             f"for {c} classes; got labels from {y.min()} "
                             f"to {y.max()}")
        return y
