"""The command line: python -m nnlib train | evaluate."""
import re
import subprocess
import sys

import numpy as np
import pytest

from nnlib import data
from nnlib.__main__ import format_confusion_matrix, main
from nnlib.metrics import confusion_matrix


def test_help_names_the_commands_with_examples():
    result = subprocess.run([sys.executable, "-m", "nnlib", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for words in ("train", "evaluate", "examples:",
                  "python -m nnlib evaluate cnn.npz --model cnn"):
        assert words in result.stdout


def test_train_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--model {mlp,cnn}", "--epochs", "--batch-size", "--lr",
                   "--optimizer {sgd,momentum,adam,adamw}", "--seed",
                   "--save PATH", "--val", "--limit", "--data-dir"):
        assert option in text
    assert "for quick tests, not for results" in text


@pytest.mark.parametrize("argv, words", [
    (["train", "--model", "mlp", "--epochs", "0"], "expected an integer >= 1"),
    (["train", "--model", "mlp", "--lr", "-1"], "expected a number > 0"),
    (["train", "--model", "rnn"], "invalid choice: 'rnn'"),
    (["train"], "the following arguments are required: --model"),
    (["evaluate", "--model", "mlp"], "required: path"),
])
def test_bad_arguments_are_refused(argv, words, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert words in capsys.readouterr().err


def test_confusion_matrix_counts_pairs():
    y_true = np.array([0, 0, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 2, 0])
    matrix = confusion_matrix(y_true, y_pred, num_classes=3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    table = format_confusion_matrix(matrix).splitlines()
    assert table[1].split() == ["true", "0", "1", "2", "recall"]
    assert table[2].split() == ["0", "1", "1", "0", "50.0%"]
    assert table[4].split() == ["2", "1", "0", "2", "66.7%"]


EVALUATE_ON_FAKE_DIGITS = """
import sys
import numpy as np
from nnlib import io, mnist, models
from nnlib.__main__ import main

rng = np.random.default_rng(0)
io.save_model(models.mlp(rng=rng), sys.argv[1])
X = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)
y = rng.integers(0, 10, 50, dtype=np.uint8)
mnist.load_mnist = lambda data_dir=None, **options: (X, y, X, y)
status = main(["evaluate", sys.argv[1], "--model", "mlp"])
print("status", status)
print("loaded", sorted(m for m in sys.modules if m.startswith("matplotlib")))
"""


def test_evaluate_counts_without_matplotlib(tmp_path):
    # Counting a model's errors is NumPy's work; pyplot (and with it a GUI
    # backend) has no business starting in a terminal or on a server.
    done = subprocess.run(
        [sys.executable, "-c", EVALUATE_ON_FAKE_DIGITS,
         str(tmp_path / "mlp.npz")],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "status 0" in done.stdout
    assert "of 50 images" in done.stdout and "recall" in done.stdout
    assert "loaded []" in done.stdout


def test_evaluate_a_missing_file_says_so(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "none.npz"), "--model",
                 "mlp"]) == 1
    assert "no saved model at" in capsys.readouterr().err


@pytest.mark.mnist
def test_train_save_then_evaluate_on_mnist(tmp_path, capsys):
    path = tmp_path / "mlp.npz"
    status = main(["train", "--model", "mlp", "--epochs", "1", "--limit",
                   "2000", "--val", "1000", "--seed", "3", "--save",
                   str(path)])
    out = capsys.readouterr().out
    assert status == 0 and path.is_file()
    assert "training mlp on 2000 images (1000 for validation)" in out
    assert re.search(r"epoch 1/1  train loss \S+ acc \S+  val loss", out)
    trained = float(re.search(r"test accuracy (\S+)%", out)[1])
    assert trained > 50          # 32 steps: far above chance (10%)

    assert main(["evaluate", str(path), "--model", "mlp"]) == 0
    out = capsys.readouterr().out
    assert float(re.search(r"test accuracy (\S+)%", out)[1]) == trained
    rows = [line.split() for line in out.splitlines()
            if re.match(r"\s+\d\s", line)]
    counts = np.array([[int(c) for c in row[1:11]] for row in rows])
    y_test = data.load_mnist(verbose=False)[3]
    np.testing.assert_array_equal(counts.sum(axis=1),
                                  np.bincount(y_test, minlength=10))
    assert counts.trace() / len(y_test) == pytest.approx(trained / 100,
                                                        abs=5e-5)

    # the weights of an MLP do not fit the CNN
    assert main(["evaluate", str(path), "--model", "cnn"]) == 1
    assert "does not match" in capsys.readouterr().err
