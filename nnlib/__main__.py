"""The command line: ``python -m nnlib train ...`` and ``python -m nnlib evaluate ...``.

Run ``python -m nnlib --help`` (or ``train --help``) for the options.
"""
import argparse
import sys

import numpy as np

from . import data, io, mnist, models
from .losses import CrossEntropyLoss
from .metrics import confusion_matrix
from .optim import SGD, Adam, AdamW
from .train import evaluate, fit, predict

# The default learning rate of each optimiser, when --lr is not given.
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.01, "adam": 1e-3, "adamw": 1e-3}

EXAMPLES = """\
examples:
  python -m nnlib train --model mlp --epochs 5 --save mlp.npz
  python -m nnlib train --model cnn --epochs 3 --optimizer adam --lr 1e-3 \\
      --seed 1 --save cnn.npz
  python -m nnlib evaluate cnn.npz --model cnn

MNIST is read from --data-dir, $NNLIB_DATA_DIR or the cache, and fetched
on first use (see nnlib.mnist).
"""


def main(argv=None):
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    return args.command(args)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m nnlib",
        description="Train a network from nnlib on MNIST, or evaluate a "
                    "saved one on the 10,000 test images.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(title="commands", required=True)

    train = commands.add_parser(
        "train", help="train a model, print its test accuracy, save it",
        description="Train a model on the MNIST training images, show the "
                    "progress, print the accuracy on the test images, and "
                    "save the weights if --save is given.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _model_option(train)
    train.add_argument("--epochs", type=_positive_int, default=5,
                       help="passes over the training images (default: 5)")
    train.add_argument("--batch-size", type=_positive_int, default=64,
                       help="images per step (default: 64)")
    train.add_argument("--optimizer", default="sgd", choices=DEFAULT_LR,
                       help="sgd, momentum (SGD with momentum 0.9), adam or "
                            "adamw (default: sgd)")
    train.add_argument("--lr", type=_positive_float,
                       help="learning rate (default: 0.1 for sgd, 0.01 for "
                            "momentum, 0.001 for adam and adamw)")
    train.add_argument("--seed", type=int, default=0,
                       help="seed of the random generator used for the "
                            "split, the initial weights and the shuffling "
                            "(default: 0)")
    train.add_argument("--val", type=_non_negative_int, default=5000,
                       help="training images held out, at random, for "
                            "validation after each epoch; 0 for none "
                            "(default: 5000)")
    train.add_argument("--limit", type=_positive_int,
                       help="train on the first N of the remaining training "
                            "images only: for quick tests, not for results")
    train.add_argument("--save", metavar="PATH",
                       help="save the trained weights to PATH (.npz)")
    _data_option(train)
    train.set_defaults(command=run_train)

    evaluate_ = commands.add_parser(
        "evaluate", help="print a saved model's test accuracy and confusion "
                         "matrix",
        description="Load weights saved by `train --save` into the model "
                    "they came from, and print its accuracy and confusion "
                    "matrix on the 10,000 test images.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    evaluate_.add_argument("path", help="the .npz file written by --save")
    _model_option(evaluate_)
    _data_option(evaluate_)
    evaluate_.set_defaults(command=run_evaluate)
    return parser


def run_train(args):
    # Imported here: live also draws figures (Matplotlib), which `evaluate`
    # has no use for.
    from .live import TextProgress

    rng = np.random.default_rng(args.seed)
    X_train, y_train, X_test, y_test = mnist.load_mnist(args.data_dir)
    X_val = y_val = None
    if args.val:
        X_train, y_train, X_val, y_val = data.train_val_split(
            X_train, y_train, args.val, rng=rng)
    if args.limit:
        X_train, y_train = X_train[:args.limit], y_train[:args.limit]
    val_data = None if X_val is None else (_inputs(X_val, args.model), y_val)

    model = _build(args.model, rng)
    lr = args.lr or DEFAULT_LR[args.optimizer]
    if args.optimizer == "momentum":
        optimizer = SGD(model.parameters(), lr, momentum=0.9)
    else:
        kind = {"sgd": SGD, "adam": Adam, "adamw": AdamW}[args.optimizer]
        optimizer = kind(model.parameters(), lr)
    print(f"training {args.model} on {len(X_train)} images "
          f"({len(y_val) if args.val else 'no'} for validation), "
          f"{args.optimizer} lr={lr}, batch {args.batch_size}, "
          f"seed {args.seed}")
    history = fit(model, CrossEntropyLoss(), optimizer,
                  (_inputs(X_train, args.model), y_train), val_data,
                  num_epochs=args.epochs, batch_size=args.batch_size,
                  rng=rng, callbacks=[TextProgress()])
    if history.stop_reason == "nan":
        return 1            # fit has said why; a NaN model is not worth saving
    loss, acc = evaluate(model, _inputs(X_test, args.model), y_test)
    print(f"test accuracy {acc:.2%} (loss {loss:.4f})")
    if args.save:
        print(f"saved the weights to {io.save_model(model, args.save)}")
    return 0


def run_evaluate(args):
    model = _build(args.model, np.random.default_rng(0))
    try:
        io.load_model(model, args.path)
    except (OSError, ValueError, KeyError) as err:
        # str() of a KeyError would put its message in quotes
        message = err.args[0] if isinstance(err, KeyError) else err
        print(f"python -m nnlib evaluate: {message}", file=sys.stderr)
        return 1
    _, _, X_test, y_test = mnist.load_mnist(args.data_dir)
    predicted = predict(model, _inputs(X_test, args.model)).argmax(axis=1)
    matrix = confusion_matrix(y_test, predicted)
    print(f"test accuracy {np.trace(matrix) / len(y_test):.2%} "
          f"({np.trace(matrix)} of {len(y_test)} images)\n")
    print(format_confusion_matrix(matrix))
    return 0


def format_confusion_matrix(matrix):
    """The matrix as a text table, with each class's recall."""
    n = len(matrix)
    lines = ["rows: true digit, columns: predicted digit",
             "true  " + "".join(f"{j:>6}" for j in range(n)) + "  recall"]
    for i, row in enumerate(matrix):
        recall = row[i] / row.sum() if row.sum() else float("nan")
        lines.append(f"{i:>4}  " + "".join(f"{c:>6}" for c in row)
                     + f"  {recall:>6.1%}")
    return "\n".join(lines)


def _build(name, rng):
    return models.mlp(rng=rng) if name == "mlp" else models.seed_cnn(rng=rng)


def _inputs(X, name):
    """uint8 images -> the model's input: (N, 784) rows or (N, 1, 28, 28)."""
    return data.normalize(X, flatten=name == "mlp")


def _model_option(parser):
    parser.add_argument(
        "--model", choices=("mlp", "cnn"), required=True,
        help="mlp: 784-256-64-10 with ReLU (nnlib.models.mlp); cnn: the "
             "seed CNN with BatchNorm (nnlib.models.seed_cnn)")


def _data_option(parser):
    parser.add_argument("--data-dir", metavar="DIR",
                        help="a directory with the four MNIST files")


def _positive_int(text):
    return _number(text, int, lambda v: v >= 1, "an integer >= 1")


def _non_negative_int(text):
    return _number(text, int, lambda v: v >= 0, "an integer >= 0")


def _positive_float(text):
    return _number(text, float, lambda v: v > 0, "a number > 0")


def _number(text, kind, ok, what):
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


if __name__ == "__main__":
    sys.exit(main())
