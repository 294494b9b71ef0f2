"""Save and load a model's weights as a plain ``.npz`` archive.

An ``.npz`` file is a zip of ``.npy`` arrays, one per name of
``model.state_dict()``: any NumPy can read it, and loading it runs no code,
unlike a pickle (``np.load(..., allow_pickle=False)`` makes sure of that).
Beside the arrays the archive holds a short JSON text, under the name
``__nnlib__``, that records the model it came from, so that loading it into
another architecture can say which two models did not match.

The file is written to a temporary name in the same folder and then renamed
over the target (``os.replace`` is atomic), so a save interrupted half-way
never leaves a broken file behind: the old file, if any, stays whole.
"""
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .layers import ShapeError

META_KEY = "__nnlib__"


def save_model(model, path):
    """Write ``model.state_dict()`` to ``path`` (an .npz archive); return
    the path."""
    path = Path(path)
    state = model.state_dict()
    if META_KEY in state:
        raise ValueError(f"a parameter may not be called {META_KEY!r}")
    state[META_KEY] = np.array(json.dumps({"model": repr(model)}))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **state)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:       # KeyboardInterrupt too: remove the half file
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_model(model, path):
    """Copy the weights saved at ``path`` into ``model``; return the model.

    The model must have the architecture of the one that was saved: same
    parameter names, same shapes. Otherwise a ``KeyError`` (names) or a
    ``ShapeError`` (shapes) says what differs and shows both models.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved model at {path}: check the path, "
                                "or train and save_model(model, path) first")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not a model saved by save_model (an "
                         f".npz archive of arrays): {err}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} holds a single array, not a model saved "
                         "by save_model (an .npz archive of arrays)")
    with archive:
        state = {name: archive[name] for name in archive.files}
    meta = json.loads(str(state.pop(META_KEY, "{}")))
    try:
        model.load_state_dict(state)
    except (KeyError, ShapeError) as err:
        saved = _one_line(meta.get("model", "a model not recorded"))
        raise type(err)(f"{err.args[0]} (the file {path} holds the weights "
                        f"of {saved}; the model is {_one_line(repr(model))})"
                        ) from None
    return model


def _one_line(text):
    """A multi-line repr such as Sequential's, on one line."""
    return " ".join(text.split())
