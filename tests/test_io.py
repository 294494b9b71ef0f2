"""Saving and loading models as .npz archives."""
import numpy as np
import pytest

import nnlib.io
from nnlib.io import load_model, save_model
from nnlib.layers import BatchNorm1d, Linear, ReLU, Sequential, ShapeError


def mlp(seed, hidden=8):
    rng = np.random.default_rng(seed)
    return Sequential(Linear(4, hidden, rng=rng), BatchNorm1d(hidden), ReLU(),
                      Linear(hidden, 3, rng=rng))


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        np.testing.assert_array_equal(sa[name], sb[name], err_msg=name)


def test_round_trip_restores_parameters_and_buffers(tmp_path):
    model = mlp(seed=0)
    model(np.random.default_rng(1).standard_normal((16, 4)).astype(np.float32))
    assert model[1].running_mean.any()        # the buffers have moved
    path = save_model(model, tmp_path / "mlp.npz")
    other = mlp(seed=2)
    assert load_model(other, path) is other
    assert_same_state(model, other)


def test_the_file_is_plain_npz_without_pickle(tmp_path):
    model = mlp(seed=0)
    path = save_model(model, tmp_path / "sub" / "mlp.npz")
    with np.load(path, allow_pickle=False) as archive:
        names = set(archive.files)
        np.testing.assert_array_equal(archive["0.weight"],
                                      model[0].weight.data)
    assert names == set(model.state_dict()) | {nnlib.io.META_KEY}


def test_wrong_architecture_names_both_models(tmp_path):
    path = save_model(mlp(seed=0, hidden=8), tmp_path / "mlp.npz")
    with pytest.raises(ShapeError) as err:
        load_model(mlp(seed=0, hidden=5), path)
    message = str(err.value)
    assert "0.weight" in message and "(5, 4)" in message
    assert "Linear(4, 8)" in message and "Linear(4, 5)" in message


def test_missing_parameters_are_named(tmp_path):
    path = save_model(mlp(seed=0), tmp_path / "mlp.npz")
    with pytest.raises(KeyError, match=r"unexpected \['1.bias'"):
        load_model(Sequential(Linear(4, 8, rng=np.random.default_rng(0))), path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved model at .*nope"):
        load_model(mlp(seed=0), tmp_path / "nope.npz")


def test_a_file_that_is_not_an_archive(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a model saved by save_model"):
        load_model(mlp(seed=0), path)


def test_an_interrupted_save_leaves_the_old_file_whole(tmp_path, monkeypatch):
    path = save_model(mlp(seed=0), tmp_path / "mlp.npz")

    def savez_then_interrupt(file, **arrays):
        file.write(b"PK half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(nnlib.io.np, "savez", savez_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_model(mlp(seed=3), path)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["mlp.npz"]  # no temp file
    assert_same_state(load_model(mlp(seed=5), path), mlp(seed=0))
