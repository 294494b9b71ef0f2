"""nnlib.report: the ≈ mark, spreads, verdicts over seeds, McNemar's test,
and the sanitizer that lets the notebook tests ignore marked numbers only."""
import configparser
import re
from pathlib import Path

import numpy as np
import pytest

from nnlib import report

SANITIZE = Path(__file__).with_name("nbval_sanitize.cfg")


def sanitize(text):
    """Apply tests/nbval_sanitize.cfg as nbval does: every pattern, in order."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(SANITIZE, encoding="utf-8")
    for section in config.sections():
        text = re.sub(config[section]["regex"], config[section]["replace"],
                      text)
    return text


def test_trained_marks_the_number():
    assert report.trained(0.98271) == "≈98.27%"
    assert report.trained(0.0431, ".3f") == "≈0.043"


def test_spread_statistics_and_text():
    s = report.Spread([0.97, 0.98, 0.99])
    assert s.n == 3 and s.mean == pytest.approx(0.98)
    assert s.std == pytest.approx(0.01)          # ddof=1
    assert (s.min, s.max) == (0.97, 0.99)
    assert str(s) == "≈98.00% ± 1.00"


@pytest.mark.parametrize("values", [[0.9], [[0.9, 0.8]], [0.9, np.nan]])
def test_spread_rejects_what_is_not_a_set_of_seeds(values):
    with pytest.raises(ValueError, match="spread needs"):
        report.Spread(values)


def test_compare_names_a_winner_only_beyond_the_spread():
    clear = report.compare([0.99, 0.991, 0.992], [0.98, 0.981, 0.979],
                           ("BN", "none"))
    assert clear.winner == "BN"
    assert clear.verdict == "BN better than none, beyond the seed spread"
    assert clear.gap == pytest.approx(0.011)
    # Overlapping ranges: no winner, whatever the means say.
    close = report.compare([0.990, 0.991, 0.995], [0.989, 0.990, 0.9915],
                           ("BN", "none"))
    assert close.winner is None
    assert "within the seed spread" in close.verdict
    # Separate ranges but a gap under twice the spread: still no winner.
    noisy = report.compare([0.95, 0.99, 0.991], [0.92, 0.94, 0.949])
    assert noisy.winner is None


def test_compare_lower_is_better_and_b_can_win():
    losses = report.compare([0.3, 0.31, 0.32], [0.1, 0.11, 0.12],
                            ("SGD", "Adam"), higher_is_better=False,
                            points=False)
    assert losses.winner == "Adam"
    assert str(losses).startswith("Adam better than SGD")


def test_mcnemar_counts_disagreements_and_gives_the_exact_p_value():
    a = np.array([1, 1, 1, 0, 0, 1], dtype=bool)
    b = np.array([1, 0, 0, 0, 1, 1], dtype=bool)
    only_a, only_b, p = report.mcnemar(a, b)
    assert (only_a, only_b) == (2, 1)
    assert p == pytest.approx(1.0)            # 2 * P(X <= 1 | n=3) capped
    only_a, only_b, p = report.mcnemar(np.ones(10, bool), np.zeros(10, bool))
    assert (only_a, only_b) == (10, 0)
    assert p == pytest.approx(2 / 2 ** 10)
    with pytest.raises(ValueError, match="one entry per test image"):
        report.mcnemar(a, b[:3])


def disagreeing(only_a, only_b, agree=100):
    """Correctness of two models that disagree on only_a + only_b images."""
    both = np.ones(agree, bool)
    a = np.r_[np.ones(only_a, bool), np.zeros(only_b, bool), both]
    b = np.r_[np.zeros(only_a, bool), np.ones(only_b, bool), both]
    return a, b


# SciPy 1.17's binomtest(only_a, only_a + only_b).pvalue, computed once (SciPy
# is not a dependency of nnlib).
SCIPY_BINOMTEST = {(520, 510): 0.7791639685715159,
                   (600, 400): 2.728464156065947e-10,
                   (5000, 5100): 0.32458154633139585,
                   (3, 7): 0.34375}


@pytest.mark.parametrize("counts", list(SCIPY_BINOMTEST))
def test_mcnemar_agrees_with_scipy_beyond_1024_disagreements(counts):
    # 2.0 ** 1030 overflowed a float: these raised OverflowError.
    only_a, only_b, p = report.mcnemar(*disagreeing(*counts))
    assert (only_a, only_b) == counts
    assert p == pytest.approx(SCIPY_BINOMTEST[counts], rel=1e-12)
    # the test is symmetric in the two models
    assert report.mcnemar(*disagreeing(*counts)[::-1])[2] == p


def test_mcnemar_p_value_of_a_landslide_underflows_to_zero():
    assert report.mcnemar(*disagreeing(4000, 0)) == (4000, 0, 0.0)
    assert report.mcnemar(*disagreeing(0, 0)) == (0, 0, 1.0)


def test_computed_with_names_numpy_and_the_kernel():
    text = repr(report.ComputedWith())
    assert f"NumPy {np.__version__}" in text
    assert "Numbers marked ≈" in text


def test_sanitizer_masks_marked_numbers_and_nothing_else():
    assert sanitize("test accuracy ≈98.27%") == "test accuracy ≈TRAINED"
    assert sanitize("≈98.27% ± 0.05 over 3 seeds") == "≈TRAINED over 3 seeds"
    assert sanitize("gap ≈-1.2e-03,") == "gap ≈TRAINED,"
    # Unmarked numbers, and "≈ " with a space (worked maths), stay exact.
    for exact in ["98.27%", "ln 10 ≈ 2.303", "checksum 0xdeadbeef ok",
                  "60,000 images of 28x28 pixels", "max error 3.1e-07"]:
        assert sanitize(exact) == exact


def test_sanitizer_masks_only_the_kernel_name_in_the_computed_with_note():
    note = repr(report.ComputedWith())
    masked = sanitize(note)
    assert "KERNEL kernel" in masked or "threadpoolctl does not know" in note
    assert f"NumPy {np.__version__}" in masked
    other = note.replace(report.environment()["kernel"] or "", "Haswell")
    assert sanitize(other) == masked
