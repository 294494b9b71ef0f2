"""nnlib.metrics: exact counts from labels and activations, no Matplotlib."""
import numpy as np
import pytest

from nnlib import metrics


def test_confusion_matrix_counts_exactly():
    y_true = [0, 0, 1, 2, 2, 2]
    y_pred = [0, 1, 1, 2, 0, 2]
    cm = metrics.confusion_matrix(y_true, y_pred, num_classes=3)
    np.testing.assert_array_equal(cm, [[1, 1, 0],
                                       [0, 1, 0],
                                       [1, 0, 2]])


def test_confusion_matrix_rejects_scores_and_out_of_range_labels():
    with pytest.raises(ValueError, match="argmax"):
        metrics.confusion_matrix([0, 1], np.eye(2))
    with pytest.raises(ValueError, match="outside 0..2"):
        metrics.confusion_matrix([0, 3], [0, 1], num_classes=3)


def test_dead_relu_fraction_is_exact():
    a = np.ones((4, 5))
    a[:, [0, 3]] = 0                 # two of five units never fire
    a[1:, 1] = 0                     # this one fires once: alive
    assert metrics.dead_relu_fraction([a]) == [0.4]
    conv = np.ones((3, 2, 2, 2))
    conv[:, 1, 0, :] = 0             # 2 of 8 (channel, position) units
    assert metrics.dead_relu_fraction({"c": conv, "a": a}) == {"c": 0.25,
                                                             "a": 0.4}
    with pytest.raises(ValueError, match="batch axis"):
        metrics.dead_relu_fraction([np.zeros(5)])


def test_as_labels_says_what_is_wrong():
    assert metrics.as_labels([3, 1], "y").tolist() == [3, 1]
    with pytest.raises(ValueError, match="must hold integers"):
        metrics.as_labels([0.5, 1.0], "y")
    with pytest.raises(ValueError, match="y has 2 entries for 3 images"):
        metrics.as_labels([1, 2], "y", 3)
