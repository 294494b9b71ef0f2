"""How the book reports numbers that training produced.

A trained network's accuracy depends, in its last digits, on the machine:
BLAS libraries add the terms of a matrix product in different orders on
different processors, and thousands of SGD steps amplify those rounding
differences. So the book keeps two kinds of number apart:

- numbers that do not depend on training (data facts, shapes, gradient
  checks, worked examples) are printed plainly and must be reproduced
  exactly;
- numbers that training produced are printed with the mark ``≈`` in front
  (``≈98.27%``, or ``≈98.27% ± 0.05`` for a mean and its spread over
  seeds). The notebook tests compare everything except the marked numbers,
  and the claims those numbers support are held by ``assert`` lines.

A claim such as "A is better than B" is decided over several seeds with
:func:`compare`, never from one run.
"""
import math
import platform

import numpy as np

MARK = "≈"


def trained(value, fmt=".2%"):
    """A trained number as the book prints it: ``trained(0.9827) == '≈98.27%'``."""
    return MARK + format(value, fmt)


class Spread:
    """One result measured over several seeds.

    ``values`` holds one number per seed. ``std`` is the sample standard
    deviation (``ddof=1``), the usual estimate of how much one run of this
    setting moves when only the seed changes.
    """

    def __init__(self, values, fmt=".2%"):
        self.values = np.asarray(values, dtype=np.float64)
        if self.values.ndim != 1 or self.values.size < 2:
            raise ValueError(
                f"a spread needs a 1-D list of at least two results (one per "
                f"seed), got shape {self.values.shape}: run more seeds")
        if not np.all(np.isfinite(self.values)):
            raise ValueError(
                f"a spread needs finite results, got {self.values.tolist()}: "
                f"a run that diverged should be reported on its own")
        self.fmt = fmt

    n = property(lambda self: self.values.size)
    mean = property(lambda self: float(self.values.mean()))
    std = property(lambda self: float(self.values.std(ddof=1)))
    min = property(lambda self: float(self.values.min()))
    max = property(lambda self: float(self.values.max()))

    def __str__(self):
        # The ± part is written without a % sign even for percentages, so
        # that the mark covers "mean ± spread" as one trained quantity.
        spread = format(self.std, self.fmt).rstrip("%")
        return f"{trained(self.mean, self.fmt)} ± {spread}"

    def __repr__(self):
        return f"Spread({self}, {self.n} seeds)"


class Comparison:
    """The verdict of :func:`compare`. ``verdict`` is a plain string, the
    same on every machine when the effect is clear; ``str()`` adds the
    trained numbers behind it, marked."""

    def __init__(self, a, b, names, higher_is_better, points):
        self.a, self.b, self.names = a, b, names
        sign = 1.0 if higher_is_better else -1.0
        self.gap = a.mean - b.mean
        self.noise = max(a.std, b.std)
        self.points = points
        # A is better when its worst seed beats B's best seed, and the
        # means differ by at least twice the larger standard deviation.
        # With three seeds each, unrelated settings pass both tests by
        # chance about one time in twenty; demanding both keeps verdicts
        # that must hold on every machine away from the edge.
        a_worst = a.min if higher_is_better else a.max
        b_best = b.max if higher_is_better else b.min
        b_worst = b.min if higher_is_better else b.max
        a_best = a.max if higher_is_better else a.min
        clear = abs(self.gap) >= 2 * self.noise
        if clear and sign * (a_worst - b_best) > 0:
            self.winner = names[0]
        elif clear and sign * (b_worst - a_best) > 0:
            self.winner = names[1]
        else:
            self.winner = None

    @property
    def verdict(self):
        a, b = self.names
        if self.winner is None:
            return f"{a} vs {b}: within the seed spread, no winner"
        loser = b if self.winner == a else a
        return f"{self.winner} better than {loser}, beyond the seed spread"

    def _size(self, value):
        return f"{100 * value:.2f} points" if self.points else f"{value:.4g}"

    def __str__(self):
        return (f"{self.verdict} (gap {MARK}{self._size(abs(self.gap))}, "
                f"largest seed std {MARK}{self._size(self.noise)})")


def compare(a, b, names=("A", "B"), *, higher_is_better=True, points=True):
    """Decide whether setting ``a`` beats setting ``b`` over seeds.

    ``a`` and ``b`` are lists of one result per seed (or :class:`Spread`).
    The verdict names a winner only when the two ranges over seeds do not
    overlap and the means differ by at least twice the larger standard
    deviation; otherwise it says the difference is within the spread.
    ``points=True`` prints gaps of fractions as percentage points.
    """
    a = a if isinstance(a, Spread) else Spread(a)
    b = b if isinstance(b, Spread) else Spread(b)
    return Comparison(a, b, tuple(names), higher_is_better, points)


def mcnemar(correct_a, correct_b):
    """McNemar's exact test for two classifiers on the same test images.

    ``correct_a`` and ``correct_b`` are boolean arrays, one entry per image.
    Only the images where the two disagree carry information: ``only_a``
    (A right, B wrong) and ``only_b``. Under "equally good", each such image
    is a fair coin, so the two-sided p-value is twice the binomial tail
    P(X <= min(only_a, only_b)) for X ~ Binomial(only_a + only_b, 1/2),
    capped at 1: SciPy's ``binomtest(only_a, only_a + only_b).pvalue``.
    Returns ``(only_a, only_b, p_value)``.
    """
    correct_a = np.asarray(correct_a, dtype=bool)
    correct_b = np.asarray(correct_b, dtype=bool)
    if correct_a.shape != correct_b.shape or correct_a.ndim != 1:
        raise ValueError(
            f"mcnemar needs two 1-D arrays with one entry per test image, got "
            f"shapes {correct_a.shape} and {correct_b.shape}")
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return only_a, only_b, 1.0
    # Exact integers to the end: 2.0 ** n overflows a float from n = 1,024
    # disagreements on, while Python divides two integers of any size into
    # the correctly rounded float (a tiny p becomes 0.0, never an error).
    twice_tail = 2 * sum(math.comb(n, i) for i in range(k + 1))
    return only_a, only_b, min(1.0, twice_tail / 2 ** n)


def environment():
    """What this process computes with: versions, BLAS, kernel, threads."""
    from threadpoolctl import threadpool_info

    blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "blas": None, "blas_version": None, "kernel": None,
            "threads": None}
    if blas:
        info.update(blas=blas[0].get("internal_api"),
                    blas_version=blas[0].get("version"),
                    kernel=blas[0].get("architecture"),
                    threads=blas[0].get("num_threads"))
    return info


def computed_with():
    """One sentence for a chapter's page: what its outputs were computed with.

    The kernel name is the one part that differs between machines; the
    notebook tests ignore it (``tests/nbval_sanitize.cfg``).
    """
    e = environment()
    if e["blas"]:
        blas = (f"{e['blas']} {e['blas_version']}, {e['kernel']} kernel, "
                f"{e['threads']} threads")
    else:
        blas = "a BLAS that threadpoolctl does not know"
    return (f"Computed with NumPy {e['numpy']} ({blas}). Numbers marked "
            f"{MARK} came from training and move in their last digits on "
            f"other machines; see Running the book yourself.")


class ComputedWith:
    """:func:`computed_with` as a note on a chapter's page (a Jupyter
    display: HTML in the book, the plain sentence elsewhere)."""

    def __init__(self):
        self.text = computed_with()

    def __repr__(self):
        return self.text

    def _repr_html_(self):
        return ('<div class="admonition note"><p class="admonition-title">'
                f'Where these numbers were computed</p><p>{self.text}</p></div>')
