"""Gradient checks: compare backpropagation with centred differences.

For a scalar function f and a tiny step h, each partial derivative is about

    df/dx_i  ~  (f(x + h e_i) - f(x - h e_i)) / (2 h)

with an error of order h**2. We compare that with the analytic gradient by
the relative error ``max|a - b| / max(|a| + |b|)``. In float64 a correct
backward pass gives about 1e-8 or less; a wrong one, 1e-2 or more.

Centred differences need float64: float32 keeps only about 7 digits, and
f(x + h) - f(x - h) then loses most of them, so even a correct gradient
looks wrong. Build the layers with ``dtype=np.float64`` to check them.

Layers whose output is random (Dropout in training mode) cannot be checked
this way: every call of the forward pass would draw another mask.
"""
import numpy as np

from .init import _check_rng

TINY = 1e-12


def _require_float64(a, what):
    if np.asarray(a).dtype != np.float64:
        raise TypeError(f"gradient checks need float64, but {what} is "
                        f"{np.asarray(a).dtype}: centred differences in "
                        "float32 lose most of their digits. Build the layer "
                        "with dtype=np.float64 and pass float64 data, e.g. "
                        "x.astype(np.float64)")


def _partial(f, x, idx, h):
    """Centred difference of f with respect to the single entry x[idx]."""
    old = x[idx]
    try:
        x[idx] = old + h
        f_plus = f(x)
        x[idx] = old - h
        f_minus = f(x)
    finally:
        x[idx] = old
    return (f_plus - f_minus) / (2 * h)


def numerical_gradient(f, x, h=1e-5):
    """The gradient of the scalar function ``f(x)`` by centred differences.

    ``x`` (float64) is changed in place, one entry at a time, and restored.
    """
    _require_float64(x, "x")
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        grad[idx] = _partial(f, x, idx, h)
    return grad


def rel_error(a, b):
    """max|a - b| / max(|a| + |b|): 0 when equal, 1 when of opposite sign."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare shapes {a.shape} and {b.shape}")
    scale = max(np.max(np.abs(a) + np.abs(b), initial=0.0), TINY)
    return float(np.max(np.abs(a - b), initial=0.0) / scale)


def _compare(f, x, analytic, h, rng, num_checks):
    """rel_error of ``analytic`` against centred differences of f at x,
    on every entry, or on ``num_checks`` entries drawn at random."""
    if num_checks is None or num_checks >= x.size:
        return rel_error(analytic, numerical_gradient(f, x, h))
    _require_float64(x, "x")
    flat = rng.choice(x.size, size=num_checks, replace=False)
    idxs = [np.unravel_index(i, x.shape) for i in flat]
    numeric = [_partial(f, x, idx, h) for idx in idxs]
    return rel_error([analytic[idx] for idx in idxs], numeric)


def _report(errors, label, verbose):
    if verbose:
        width = max(map(len, errors))
        for name, err in errors.items():
            print(f"{label}  {name:<{width}}  rel. error {err:.1e}")
    return errors


def check_layer(layer, x, *, rng, h=1e-5, num_checks=None, verbose=True):
    """Check ``layer.backward`` for the input and every parameter.

    The scalar checked is ``sum(layer.forward(x) * dout)`` for a random
    ``dout``: its gradient with respect to the output is ``dout``, so
    ``layer.backward(dout)`` must return its gradient with respect to x.
    Returns ``{'dx': error, 'weight': error, ...}`` and, with ``verbose``,
    prints one line for each. ``num_checks`` limits each comparison to that
    many entries drawn at random (for big arrays).
    """
    _check_rng(rng)
    _require_float64(x, "the input x")
    params = layer.named_parameters()
    for name, p in params:
        _require_float64(p.data, f"{layer!r}.{name}")
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    layer.zero_grad()                 # backward adds to the gradients
    analytic = {"dx": layer.backward(dout)}
    analytic.update((name, p.grad.copy()) for name, p in params)

    def f(_):
        return float(np.sum(layer.forward(x) * dout))

    errors = {"dx": _compare(f, x, analytic["dx"], h, rng, num_checks)}
    for name, p in params:
        errors[name] = _compare(f, p.data, analytic[name], h, rng, num_checks)
    return _report(errors, repr(layer), verbose)


def check_model(model, loss_fn, X, y, *, rng=None, h=1e-5, num_checks=None,
                verbose=True):
    """Check the gradient of ``loss_fn(model(X), y)`` for every parameter.

    The analytic gradients come from ``model.backward(loss_fn.backward())``.
    Returns ``{parameter name: error}`` and, with ``verbose``, prints one
    line for each. With ``num_checks``, each parameter is checked at that
    many entries drawn with ``rng``.
    """
    if num_checks is not None:
        _check_rng(rng)
    _require_float64(X, "the input X")
    params = model.named_parameters()
    for name, p in params:
        _require_float64(p.data, f"parameter {name}")
    loss_fn(model.forward(X), y)
    model.zero_grad()                 # backward adds to the gradients
    model.backward(loss_fn.backward())
    analytic = {name: p.grad.copy() for name, p in params}

    def f(_):
        return loss_fn(model.forward(X), y)

    errors = {name: _compare(f, p.data, analytic[name], h, rng, num_checks)
              for name, p in params}
    return _report(errors, type(model).__name__, verbose)


def assert_gradients_close(errors, tol=1e-6):
    """Raise AssertionError naming every gradient whose error exceeds tol."""
    bad = {name: err for name, err in errors.items() if not err <= tol}
    if bad:
        listed = ", ".join(f"{name}: {err:.1e}" for name, err in bad.items())
        raise AssertionError(f"gradients differ (tolerance {tol:.0e}): "
                             f"{listed}")
