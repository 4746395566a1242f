"""keras_avae.files: atomic text, JSON, model and checkpoint writes; clear errors for broken model files."""

import json
import os
import zipfile

import keras
import numpy as np
import pytest
from keras.src.saving import saving_lib

import keras_avae
from keras_avae import files

INVALID_ARCHIVE = r"`path` is not a valid \.keras archive \(truncated or not a Keras model file\)"


def _dense_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def _regression_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


def _vae(make_networks, images):
    model = keras_avae.VAE(*make_networks(), seed=0)
    model(images[:1])
    return model


def _listing(folder):
    return sorted(os.listdir(folder))


class SaveFailure(RuntimeError):
    pass


def _fail_after_some_bytes(monkeypatch, calls=None):
    """Keras' archive writer writes part of a file, then fails, as a full disk or a kill would."""

    def write_then_fail(model, fileobj, weights_format):
        fileobj.write(b"PK\x03\x04 partial archive")
        fileobj.flush()
        if calls is not None:
            calls.append(fileobj.name)
        raise SaveFailure("disk full")

    monkeypatch.setattr(saving_lib, "_save_model_to_fileobj", write_then_fail)


# ------------------------------------------------------------------ text and JSON


def test_write_text_round_trip_and_overwrite(tmp_path):
    path = tmp_path / "summary.md"
    assert files.write_text(path, "| a | ρ |\n") == path
    assert path.read_text(encoding="utf-8") == "| a | ρ |\n"
    files.write_text(path, "second")
    assert path.read_text(encoding="utf-8") == "second"
    assert _listing(tmp_path) == ["summary.md"]


def test_write_json_round_trip(tmp_path):
    path = tmp_path / "metrics.json"
    document = {"fid": 12.5, "accuracy": {"digit": {"0.1": 0.75}}, "label": "AVAE", "seeds": [1, 2], "none": None}
    files.write_json(path, document)
    assert json.loads(path.read_text()) == document
    assert path.read_text() == json.dumps(document, indent=2) + "\n"
    assert _listing(tmp_path) == ["metrics.json"]


def test_write_json_refuses_nan_before_writing(tmp_path):
    path = tmp_path / "metrics.json"
    files.write_json(path, {"fid": 1.0})
    before = path.read_bytes()
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        files.write_json(path, {"fid": float("nan")})
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["metrics.json"]


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_failing_text_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, step):
    path = tmp_path / "config.json"
    files.write_json(path, {"epochs": 1})
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(f"{step} failed")

    monkeypatch.setattr(os, step, fail)
    with pytest.raises(OSError, match=f"{step} failed"):
        files.write_json(path, {"epochs": 2, "padding": "x" * 100_000})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["config.json"]


def test_a_missing_folder_is_named_in_the_error(tmp_path):
    path = tmp_path / "no_such_folder" / "summary.md"
    message = r"The folder of `path` does not exist\. Received: path=.*no_such_folder"
    with pytest.raises(FileNotFoundError, match=message):
        files.write_text(path, "text")
    assert _listing(tmp_path) == []


def test_new_files_get_the_usual_permissions_and_replaced_ones_keep_theirs(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    path = tmp_path / "table1.md"
    files.write_text(path, "new")
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
    os.chmod(path, 0o640)
    files.write_text(path, "again")
    assert os.stat(path).st_mode & 0o777 == 0o640


# ------------------------------------------------------------------ save_model


def test_save_model_round_trip(tmp_path):
    model = _dense_model()
    x, _ = _regression_data()
    path = tmp_path / "model.keras"
    assert files.save_model(model, path) == path
    assert _listing(tmp_path) == ["model.keras"]
    np.testing.assert_array_equal(files.load_model(path).predict(x, verbose=0), model.predict(x, verbose=0))


def test_failing_save_leaves_the_old_model_byte_identical(tmp_path, monkeypatch):
    path = tmp_path / "model.keras"
    files.save_model(_dense_model(0), path)
    before = path.read_bytes()
    calls = []
    _fail_after_some_bytes(monkeypatch, calls)
    with pytest.raises(SaveFailure, match="disk full"):
        files.save_model(_dense_model(1), path)
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["model.keras"]
    # The partial archive went to a hidden file next to the target.
    (temporary,) = calls
    assert os.path.dirname(temporary) == os.fspath(tmp_path)
    assert os.path.basename(temporary).startswith(".") and temporary.endswith(".keras")


@pytest.mark.parametrize(
    "name, message",
    [
        ("model.h5", r"\.h5 \(legacy HDF5\) is not supported; use a \.keras path"),
        ("model.hdf5", r"\.hdf5 \(legacy HDF5\) is not supported; use a \.keras path"),
        ("model", r"`path` must end in \.keras"),
        ("model.weights.h5", r"\.h5 \(legacy HDF5\) is not supported"),
    ],
)
def test_save_model_refuses_other_formats_before_writing(tmp_path, name, message):
    path = tmp_path / name
    with pytest.raises(ValueError, match=rf"Only the \.keras format is supported: {message}.*Received: path="):
        files.save_model(_dense_model(), path)
    assert not path.exists()
    assert _listing(tmp_path) == []


def test_save_model_refuses_an_unzipped_folder(tmp_path):
    with pytest.raises(ValueError, match="Only zipped .keras archives are supported.*Received: zipped=False"):
        files.save_model(_dense_model(), tmp_path / "model.keras", zipped=False)
    assert _listing(tmp_path) == []


def test_save_model_respects_overwrite_false(tmp_path):
    path = tmp_path / "model.keras"
    files.save_model(_dense_model(), path, overwrite=False)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match=r"`path` exists and `overwrite=False`\. Received: path="):
        files.save_model(_dense_model(1), path, overwrite=False)
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["model.keras"]


# ------------------------------------------------------------------ load_model


@pytest.fixture
def saved_model(tmp_path):
    path = tmp_path / "saved.keras"
    files.save_model(_dense_model(), path)
    return path


def test_load_model_of_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No model file at `path`\. Received: path=.*missing\.keras"):
        files.load_model(tmp_path / "missing.keras")


def test_load_model_of_a_truncated_file(tmp_path, saved_model):
    path = tmp_path / "truncated.keras"
    path.write_bytes(saved_model.read_bytes()[:100])
    with pytest.raises(ValueError, match=rf"{INVALID_ARCHIVE}: not a zip archive\. Received: path=.*truncated"):
        files.load_model(path)


def test_load_model_of_random_bytes(tmp_path):
    path = tmp_path / "random.keras"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match=rf"{INVALID_ARCHIVE}: not a zip archive"):
        files.load_model(path)


def test_load_model_of_a_zip_without_keras_members(tmp_path):
    path = tmp_path / "other.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "not a model")
    with pytest.raises(ValueError, match=rf"{INVALID_ARCHIVE}: the zip archive lacks config\.json, metadata\.json"):
        files.load_model(path)


def test_load_model_of_a_corrupt_member(tmp_path, saved_model):
    data = bytearray(saved_model.read_bytes())
    with zipfile.ZipFile(saved_model) as archive:
        info = archive.getinfo("config.json")
    # The local header is 30 bytes, then the name and the extra field, then the (stored) data.
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + 10] ^= 0xFF
    path = tmp_path / "corrupt.keras"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{INVALID_ARCHIVE}: Bad CRC-32") as raised:
        files.load_model(path)
    assert isinstance(raised.value.__cause__, zipfile.BadZipFile)


def _rewritten(source, path, **replacements):
    """A copy of the archive `source` at `path` with the members in `replacements` (name -> bytes) replaced."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members.update({name.replace("__", "."): data for name, data in replacements.items()})
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _unknown_class(saved_model, path):
    with zipfile.ZipFile(saved_model) as archive:
        config = json.loads(archive.read("config.json"))
    config.update(class_name="NoSuchModel", module="nowhere", registered_name="nowhere>NoSuchModel")
    return _rewritten(saved_model, path, config__json=json.dumps(config).encode())


def _truncated_weights(saved_model, path):
    with zipfile.ZipFile(saved_model) as archive:
        weights = archive.read("model.weights.h5")
    return _rewritten(saved_model, path, model__weights__h5=weights[: len(weights) // 2])


@pytest.mark.parametrize(
    "make, message",
    [
        (_unknown_class, r"config\.json names an unknown class 'NoSuchModel': import the module that registers it"),
        (_truncated_weights, rf"{INVALID_ARCHIVE}: corrupt weights member model\.weights\.h5 \(Unable to .*truncated file"),
    ],
    ids=["unknown-class", "truncated-weights-member"],
)
def test_load_model_of_a_broken_archive_is_one_value_error_naming_the_file(tmp_path, saved_model, make, message):
    """Red team (issue 23, item 5): these raised TypeError and a bare h5py OSError naming neither file nor problem."""
    path = make(saved_model, tmp_path / "broken.keras")
    before, listing = path.read_bytes(), _listing(tmp_path)
    with pytest.raises(ValueError, match=message + r".*\. Received: path=.*broken\.keras'$"):
        files.load_model(path)
    assert path.read_bytes() == before and _listing(tmp_path) == listing


def test_load_model_passes_keras_arguments(saved_model):
    model = files.load_model(saved_model, compile=False)
    assert not model.compiled
    assert files.load_model(saved_model).compiled


# ------------------------------------------------------------------ keras_avae models


def test_vae_save_is_atomic_and_loads_back(tmp_path, monkeypatch, make_networks, images):
    model = _vae(make_networks, images)
    path = tmp_path / "model.keras"
    model.save(path)
    assert _listing(tmp_path) == ["model.keras"]
    loaded = files.load_model(path)
    assert type(loaded) is keras_avae.VAE
    np.testing.assert_array_equal(loaded.encode_mean(images), model.encode_mean(images))

    before = path.read_bytes()
    _fail_after_some_bytes(monkeypatch)
    with pytest.raises(SaveFailure, match="disk full"):
        _vae(make_networks, images).save(path)
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["model.keras"]


@pytest.mark.parametrize("kind", [keras_avae.VAE, keras_avae.AVAE])
def test_vae_save_refuses_h5_before_writing(tmp_path, make_networks, images, kind):
    model = kind(*make_networks(), seed=0)
    model(images[:1])
    path = tmp_path / "model.h5"
    with pytest.raises(ValueError, match=r"\.h5 \(legacy HDF5\) is not supported; use a \.keras path"):
        model.save(path)
    assert not path.exists()
    assert _listing(tmp_path) == []


def test_vae_save_respects_overwrite_false(tmp_path, make_networks, images):
    model = _vae(make_networks, images)
    path = tmp_path / "model.keras"
    model.save(path)
    with pytest.raises(FileExistsError, match="`overwrite=False`"):
        model.save(path, overwrite=False)


# ------------------------------------------------------------------ AtomicModelCheckpoint


def _fit_with_both_checkpoints(tmp_path, filename, epochs=3, **kwargs):
    """One fit with Keras' ModelCheckpoint and AtomicModelCheckpoint side by side, into two folders."""
    model = _dense_model()
    x, y = _regression_data()
    keras_folder, atomic_folder = tmp_path / "keras", tmp_path / "atomic"
    callbacks = [
        keras.callbacks.ModelCheckpoint(os.fspath(keras_folder / filename), **kwargs),
        files.AtomicModelCheckpoint(os.fspath(atomic_folder / filename), **kwargs),
    ]
    model.fit(x, y, epochs=epochs, batch_size=8, verbose=0, callbacks=callbacks)
    return model, keras_folder, atomic_folder


def _weights(folder, name, weights_only):
    if weights_only:
        model = _dense_model(7)
        model.load_weights(folder / name)
        return model.get_weights()
    return files.load_model(folder / name).get_weights()


@pytest.mark.parametrize(
    "filename, kwargs",
    [
        ("last.keras", {}),
        ("{epoch:02d}.keras", {}),
        ("best.keras", {"monitor": "loss", "save_best_only": True}),
        # "max" on a falling loss: only the first epoch improves, so later ones must not be written.
        ("{epoch:02d}.keras", {"monitor": "loss", "mode": "max", "save_best_only": True}),
        ("last.weights.h5", {"save_weights_only": True}),
        ("{epoch:02d}.weights.h5", {"save_weights_only": True, "monitor": "loss", "save_best_only": True}),
        ("batch.weights.h5", {"save_weights_only": True, "save_freq": 1}),
    ],
)
def test_atomic_checkpoint_writes_what_model_checkpoint_writes(tmp_path, filename, kwargs):
    _, keras_folder, atomic_folder = _fit_with_both_checkpoints(tmp_path, filename, **kwargs)
    names = _listing(keras_folder)
    assert names and _listing(atomic_folder) == names
    weights_only = kwargs.get("save_weights_only", False)
    for name in names:
        for expected, actual in zip(
            _weights(keras_folder, name, weights_only), _weights(atomic_folder, name, weights_only)
        ):
            np.testing.assert_array_equal(actual, expected)


def test_atomic_checkpoint_keeps_keras_checks(tmp_path):
    with pytest.raises(ValueError, match="must end in `.weights.h5`"):
        files.AtomicModelCheckpoint(os.fspath(tmp_path / "w.keras"), save_weights_only=True)
    with pytest.raises(ValueError, match=r"\.h5 \(legacy HDF5\) is not supported; use a \.keras path"):
        files.AtomicModelCheckpoint(os.fspath(tmp_path / "model.h5"))


def test_failing_checkpoint_leaves_the_previous_model(tmp_path, monkeypatch):
    model = _dense_model()
    x, y = _regression_data()
    path = tmp_path / "checkpoint.keras"
    checkpoint = files.AtomicModelCheckpoint(os.fspath(path))
    model.fit(x, y, epochs=1, verbose=0, callbacks=[checkpoint])
    before = path.read_bytes()
    _fail_after_some_bytes(monkeypatch)
    with pytest.raises(SaveFailure, match="disk full"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[checkpoint])
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["checkpoint.keras"]


def test_failing_checkpoint_leaves_the_previous_weights(tmp_path, monkeypatch):
    model = _dense_model()
    x, y = _regression_data()
    path = tmp_path / "checkpoint.weights.h5"
    checkpoint = files.AtomicModelCheckpoint(os.fspath(path), save_weights_only=True)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[checkpoint])
    before = path.read_bytes()

    def write_then_fail(model, filepath, *args, **kwargs):
        with open(filepath, "wb") as file:
            file.write(b"\x89HDF partial")
        raise SaveFailure("disk full")

    monkeypatch.setattr(saving_lib, "save_weights_only", write_then_fail)
    with pytest.raises(SaveFailure, match="disk full"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[checkpoint])
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["checkpoint.weights.h5"]


def test_atomic_checkpoint_prints_what_model_checkpoint_prints(tmp_path, capsys):
    model = _dense_model()
    x, y = _regression_data()
    path = tmp_path / "last.keras"
    model.fit(x, y, epochs=1, verbose=0, callbacks=[files.AtomicModelCheckpoint(os.fspath(path), verbose=1)])
    assert f"Epoch 1: finished saving model to {path}" in capsys.readouterr().out


# ------------------------------------------------------------------ AtomicBackupAndRestore


def test_atomic_backup_resumes_where_it_stopped(tmp_path):
    """The private Keras hooks it overrides (`_save_model`, `_load_model`, `_current_epoch`,
    `_training_metadata_path`, `model._initial_epoch`) still make a second `fit` resume."""
    x, y = _regression_data()
    backup = tmp_path / "backup"
    first = _dense_model()
    first.fit(x, y, epochs=2, verbose=0, callbacks=[files.AtomicBackupAndRestore(backup, delete_checkpoint=False)])
    metadata = json.loads((backup / "training_metadata.json").read_text())
    assert metadata["epoch"] == 2 and sorted(os.listdir(backup)) == ["epoch_2.weights.h5", "training_metadata.json"]
    second = _dense_model(7)
    history = second.fit(x, y, epochs=3, verbose=0, callbacks=[files.AtomicBackupAndRestore(backup)])
    assert history.epoch == [2]  # epochs 0 and 1 were restored, not trained again
    assert not backup.exists()  # deleted at the end of training, as Keras does


# ------------------------------------------------------------------ stale temporary files


def test_taking_a_run_directory_removes_a_killed_writers_temporary_files(tmp_path):
    """Red team (issue 23, item 1): a kill during a write left `.model.keras.<random>.keras` for good."""
    import tempfile

    folder = tmp_path / "run"
    (folder / "backup").mkdir(parents=True)
    stale = []
    for directory, name, suffix in ((folder, "model.keras", ".keras"), (folder, "metrics.json", ".tmp"),
                                    (folder / "backup", "epoch_2.weights.h5", ".weights.h5")):
        descriptor, path = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=directory)  # as `_replacing`
        os.close(descriptor)
        stale.append(path)
    kept = {folder / "model.keras": b"model", folder / ".gitignore": b"*", folder / ".notes.tmp": b"mine",
            folder / "backup" / "training_metadata.json": b"{}"}
    for path, data in kept.items():
        path.write_bytes(data)
    deep = folder / "a" / "b" / "c" / "d"  # below a table's <arch>/<row>/backup/, and in a hidden folder: not ours
    for place in (deep, folder / ".git"):
        place.mkdir(parents=True)
        (place / ".x.keras.abcd1234.tmp").write_bytes(b"")
    with files.locked(folder):
        assert not any(os.path.exists(path) for path in stale)
    assert {path: path.read_bytes() for path in kept} == kept
    assert sorted(os.listdir(folder)) == [".git", ".gitignore", ".notes.tmp", "a", "backup", "model.keras"]
    assert (deep / ".x.keras.abcd1234.tmp").exists() and (folder / ".git" / ".x.keras.abcd1234.tmp").exists()


def test_a_backup_kept_at_the_end_of_training_restores_to_its_last_epoch(tmp_path):
    x, y = _regression_data()
    model = _dense_model()
    backup = tmp_path / "backup"
    model.fit(x, y, epochs=2, verbose=0, callbacks=[files.AtomicBackupAndRestore(backup, delete_checkpoint=False)])
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 2
    trained = [np.array(w) for w in model.weights]
    again = _dense_model(seed=1)
    history = again.fit(x, y, epochs=2, verbose=0, callbacks=[files.AtomicBackupAndRestore(backup)])
    assert history.history == {}  # both epochs were done: none runs again
    for a, b in zip(again.weights, trained):
        np.testing.assert_array_equal(np.array(a), b)
    assert not backup.exists()  # delete_checkpoint=True (the default) deletes it at the end
