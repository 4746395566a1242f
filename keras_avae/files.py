"""Writing and reading the files this library produces, so that none is ever left half-written.

Every write goes to a hidden temporary file in the target's folder, is flushed to
disk, and only then renamed over the target with `os.replace`, which is atomic on
POSIX and Windows. A reader, or a run that crashes or is killed mid-write, sees the
old file or the new one, never a truncated mix; on an error the temporary file is
removed and the old file is left as it was.

    write_text / write_json    markdown and JSON (config.json, metrics.json, summary.md, tables)
    save_model / load_model    `.keras` archives, with clear errors for other formats and broken files
    AtomicModelCheckpoint      `keras.callbacks.ModelCheckpoint`, writing each checkpoint this way
    AtomicBackupAndRestore     `keras.callbacks.BackupAndRestore` whose backup a kill leaves consistent
    locked                     a run directory's lock file while a process writes there (and, on
                               taking it, the removal of a killed writer's temporary files)

Example:
    files.write_json(out / "metrics.json", metrics)
    files.save_model(model, out / "model.keras")
    model = files.load_model(out / "model.keras")
"""

import contextlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
import zlib

import keras

KERAS_ARCHIVE_MEMBERS = ("config.json", "metadata.json")
"""Members every `.keras` archive holds (keras/src/saving/saving_lib.py); their absence marks a file
that is not a Keras model."""

_INVALID_ARCHIVE = "`path` is not a valid .keras archive (truncated or not a Keras model file)"


def _print_message(message):
    """Prints a callback's message as Keras' own (unexported) `io_utils.print_msg` does: on stdout, or to
    the log when interactive logging is off (`keras.config.disable_interactive_logging()`)."""
    if keras.config.is_interactive_logging_enabled():
        print(message, flush=True)
    else:
        logging.getLogger(__name__).info(message)


def _new_file_mode():
    """Permission bits of a new file under the process umask (`mkstemp` creates files as 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_NEW_FILE_MODE = _new_file_mode()


def _remove(path):
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _sync_file(path):
    """Flushes `path`'s data to disk, so the rename cannot land before the bytes."""
    with open(path, "rb+") as file:
        os.fsync(file.fileno())


def _sync_folder(folder):
    """Flushes the rename itself to disk where the platform allows it (POSIX)."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def _replacing(path, suffix=".tmp"):
    """Yields a hidden temporary path in `path`'s folder; replaces `path` with it if the block succeeds.

    On any exception the temporary file is removed and the exception re-raised; `path`
    is untouched until the final `os.replace`. The new file keeps the permission bits of
    the file it replaces (else those of a newly created file).
    """
    path = os.fsdecode(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"The folder of `path` does not exist. Received: path={path!r}")
    descriptor, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=folder)
    os.close(descriptor)
    try:
        yield temporary
        _sync_file(temporary)
        mode = stat.S_IMODE(os.stat(path).st_mode) if os.path.isfile(path) else _NEW_FILE_MODE
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        _remove(temporary)
        raise
    _sync_folder(folder)


def write_text(path, text, encoding="utf-8"):
    """Writes `text` to `path` atomically: the old file, if any, stays intact until the new one is complete.

    Args:
        path: the file to write; its folder must exist.
        text: the file's contents.
        encoding: text encoding.

    Returns:
        `path`.

    Example:
        files.write_text(out / "summary.md", markdown)
    """
    with _replacing(path) as temporary:
        with open(temporary, "w", encoding=encoding) as file:
            file.write(text)
    return path


def write_json(path, document):
    """Writes `document` as indented, standard JSON (no NaN) to `path` atomically, like `write_text`.

    Raises:
        ValueError: `document` holds NaN or an infinity (checked before anything is written).

    Example:
        files.write_json(out / "metrics.json", {"fid": 12.5})
    """
    return write_text(path, json.dumps(document, indent=2, allow_nan=False) + "\n")


def _check_keras_path(path):
    """Raises unless `path` names a `.keras` archive, the one model format this library writes."""
    if path.endswith(".keras"):
        return
    for legacy in (".h5", ".hdf5"):
        if path.endswith(legacy):
            raise ValueError(
                f"Only the .keras format is supported: {legacy} (legacy HDF5) is not supported; "
                f"use a .keras path. Received: path={path!r}"
            )
    raise ValueError(f"Only the .keras format is supported: `path` must end in .keras. Received: path={path!r}")


def save_model(model, path, overwrite=True, zipped=None, **kwargs):
    """`keras.saving.save_model`, atomically: writes a hidden `.keras` file next to `path`, then renames it.

    Args:
        model: a Keras model.
        path: the `.keras` file to write; its folder must exist.
        overwrite: replace an existing file; if False, an existing file is an error
            (Keras would ask on the terminal instead).
        zipped: None or True; `False` (an unzipped model folder) cannot be replaced atomically.
        **kwargs: further arguments of `keras.saving.save_model`.

    Returns:
        `path`.

    Raises:
        ValueError: `path` does not end in `.keras` (a legacy `.h5` path included), or
            `zipped=False`; checked before anything is written.
        FileExistsError: `path` exists and `overwrite=False`.

    Example:
        files.save_model(model, out / "model.keras")
    """
    target = os.fsdecode(path)
    _check_keras_path(target)
    if zipped is not None and not zipped:
        raise ValueError(
            f"Only zipped .keras archives are supported: a model folder cannot be replaced atomically. "
            f"Received: zipped={zipped!r}"
        )
    if not overwrite and os.path.lexists(target):
        raise FileExistsError(f"`path` exists and `overwrite=False`. Received: path={target!r}")
    with _replacing(target, suffix=".keras") as temporary:
        keras.saving.save_model(model, temporary, overwrite=True, zipped=True, **kwargs)
    return path


def _save_weights(model, path):
    """`model.save_weights(path)` for a `.weights.h5` file, atomically."""
    with _replacing(path, suffix=".weights.h5") as temporary:
        model.save_weights(temporary, overwrite=True)
    return path


def _archive_problem(path):
    """What makes `path` not a `.keras` archive, or None."""
    if not zipfile.is_zipfile(path):
        return "not a zip archive"
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as error:
        return f"unreadable zip archive ({error})"
    missing = [name for name in KERAS_ARCHIVE_MEMBERS if name not in names]
    if missing:
        return f"the zip archive lacks {', '.join(missing)}"
    return None


def load_model(path, **kwargs):
    """`keras.saving.load_model` (`safe_mode` on by default), with clear errors for a missing or broken file.

    Args:
        path: a `.keras` file.
        **kwargs: arguments of `keras.saving.load_model` (`custom_objects`, `compile`, `safe_mode`).

    Returns:
        The model.

    Raises:
        FileNotFoundError: there is no file at `path`.
        ValueError: the file is not a `.keras` archive: not a zip (e.g. truncated,
            or a legacy `.h5` file), without Keras' members, or with corrupt contents
            (a damaged member, a corrupt weights member); or its config names a class
            that is not registered (`unknown class 'X'`). The message names the file.

    Example:
        model = files.load_model("runs/avae_mlp/model.keras")
    """
    target = os.fsdecode(path)
    if not os.path.exists(target):
        raise FileNotFoundError(f"No model file at `path`. Received: path={target!r}")
    problem = _archive_problem(target)
    if problem:
        raise ValueError(f"{_INVALID_ARCHIVE}: {problem}. Received: path={target!r}")
    try:
        return keras.saving.load_model(target, **kwargs)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise ValueError(f"{_INVALID_ARCHIVE}: {error}. Received: path={target!r}") from error
    except TypeError as error:  # Keras' deserialisation: an unknown class, or a config its class refuses
        raise ValueError(f"{_unbuildable(error)}. Received: path={target!r}") from error
    except OSError as error:
        if error.errno is not None:  # the file system's (permission, ...): not the archive's contents
            raise
        # h5py's (errno None): "Unable to synchronously open file (truncated file: eof = ...)"
        raise ValueError(
            f"{_INVALID_ARCHIVE}: corrupt weights member {_weights_members(target)} "
            f"({_first_line(error)}). Received: path={target!r}"
        ) from error


def _first_line(error):
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _unbuildable(error):
    """What a TypeError of Keras' deserialisation says is wrong with an archive's config.json."""
    unknown = re.match(r"Could not locate (class|function) '([^']+)'", str(error))
    if unknown:
        kind, name = unknown.groups()
        return (
            f"The model's config.json names an unknown {kind} {name!r}: import the module that registers it "
            f"(`keras.saving.register_keras_serializable`) or pass it in `custom_objects`"
        )
    return f"The model cannot be rebuilt from its config.json: {_first_line(error)[:300]}"


def _weights_members(path):
    """The weights files inside the `.keras` archive `path`, for messages."""
    with zipfile.ZipFile(path) as archive:
        names = [name for name in archive.namelist() if name.endswith((".h5", ".npz"))]
    return ", ".join(names) or "(none)"


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`keras.callbacks.ModelCheckpoint` whose every file is written to a temporary file and renamed over the last.

    Same arguments and behaviour as Keras' callback (`save_best_only`,
    `save_weights_only`, `save_freq`, `{epoch}` placeholders, ...), except that a run
    killed while saving leaves the previous checkpoint intact, and a legacy `.h5` model
    path is refused when the callback is made rather than at the first save.

    Keras has no public hook for the write itself, so this overrides the private
    `ModelCheckpoint._save_model` and calls the private `_get_file_path` and
    `_should_save_model` (Keras 3.15); tests/test_files.py checks that they still behave.

    Example:
        checkpoint = AtomicModelCheckpoint("runs/avae/best.keras", monitor="loss", save_best_only=True)
        model.fit(x, epochs=10, callbacks=[checkpoint])
    """

    def __init__(self, filepath, *args, **kwargs):
        super().__init__(filepath, *args, **kwargs)
        if not self.save_weights_only:
            _check_keras_path(self.filepath)

    def _save_model(self, epoch, batch, logs):
        # Keras' `_save_model` (keras/src/callbacks/model_checkpoint.py), whose writes go through
        # `save_model` / `_save_weights`; `_get_file_path` and `_should_save_model` stay Keras' own.
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, batch, logs, filepath):
            return
        folder = os.path.dirname(filepath)
        if folder:
            os.makedirs(folder, exist_ok=True)
        try:
            if self.save_weights_only:
                _save_weights(self.model, filepath)
            else:
                save_model(self.model, filepath)
        except IsADirectoryError as error:
            raise IOError(
                "Please specify a non-directory filepath for ModelCheckpoint. "
                f"Filepath used is an existing directory: {filepath}"
            ) from error
        if self.verbose > 0:
            _print_message(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")


# ------------------------------------------------------------ run directories

LOCK_NAME = ".lock"
"""The lock file of a run directory in use (`locked`); it holds the owner's process id."""


def _process_alive(pid):
    """Whether a process with id `pid` exists (on POSIX; elsewhere any pid counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:  # Windows: no signal 0
        return True
    return True


def _lock_owner(path):
    """The process id written in the lock file `path`, or None (unreadable, empty or not a number)."""
    try:
        with open(path, encoding="utf-8") as file:
            return int(file.read().strip() or "x")
    except (OSError, ValueError):
        return None


_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}(\.tmp|\.keras|\.weights\.h5)$")
"""The name of a temporary file of `_replacing` (`tempfile.mkstemp`'s 8 random characters between)."""


STALE_SEARCH_DEPTH = 3
"""How deep below a run directory `remove_stale_temporaries` looks: a table's `<arch>/<row>/backup/`."""


def remove_stale_temporaries(folder, depth=STALE_SEARCH_DEPTH):
    """Removes the hidden temporary files a killed writer left in `folder` and its subfolders.

    Only files named as `_replacing` names them (`.model.keras.<8 characters>.keras`,
    `.metrics.json.<8 characters>.tmp`, `.<name>.<8 characters>.weights.h5`) are removed, at
    most `depth` folders down and never inside hidden folders (`.git`); call it only while
    holding the folder (`locked` does, when it takes the lock).

    Returns:
        The removed paths.
    """
    folder = os.fsdecode(folder)
    removed = []
    for root, folders, names in os.walk(folder):
        level = 0 if root == folder else os.path.relpath(root, folder).count(os.sep) + 1
        folders[:] = [] if level >= depth else [name for name in folders if not name.startswith(".")]
        for name in names:
            if _TEMPORARY.match(name):
                path = os.path.join(root, name)
                _remove(path)
                removed.append(path)
    return removed


@contextlib.contextmanager
def locked(folder):
    """Holds `folder/.lock` (with this process id) while the block writes into `folder`.

    The lock file is made with `O_CREAT | O_EXCL`, so of two processes that start at once
    only one gets it. A lock left behind by a process that no longer runs (killed, or a
    crash of the machine) is stale and taken over. The lock is removed when the block
    ends, also on an error or Ctrl-C. Once the lock is taken, the temporary files of a writer
    that was killed mid-write (`remove_stale_temporaries`) are removed.

    Args:
        folder: the run directory; made if missing, and removed again if the block
            leaves it empty (e.g. a run that stopped before writing anything).

    Raises:
        FileExistsError: `folder` is in use by another running process (or by an
            enclosing `locked` of this one), or it names a file, not a folder.

    Example:
        with files.locked(out):
            train_and_write(out)
    """
    folder = os.fsdecode(folder)
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise FileExistsError(
            f"The output folder {folder} is a file, not a folder; choose another --out (or `out`)."
        )
    created = not os.path.isdir(folder)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, LOCK_NAME)
    for _ in range(3):
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, _NEW_FILE_MODE)
        except FileExistsError:
            owner = _lock_owner(path)
            if owner is None:  # being written this instant, or garbage: look once more, then take it
                time.sleep(0.1)
                owner = _lock_owner(path)
            if owner is not None and _process_alive(owner):
                raise FileExistsError(
                    f"The run directory {folder} is in use by process {owner} (lock file {path}); wait for "
                    "it to finish, or use another --out."
                ) from None
            _remove(path)  # stale: its process is gone
            continue
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(f"{os.getpid()}\n")
        break
    else:
        raise FileExistsError(f"Could not take the lock {path}: another process keeps taking it.")
    if not created:
        remove_stale_temporaries(folder)  # ours alone now: any temporary file is a killed writer's
    try:
        yield path
    finally:
        if _lock_owner(path) == os.getpid():
            _remove(path)
        if created and not os.listdir(folder):
            os.rmdir(folder)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose backup a kill at any instant leaves consistent.

    Keras writes `latest.weights.h5` and then `training_metadata.json` in place, so a run
    killed between the two (or during either) restores the weights of one epoch with the
    epoch number of another, or cannot restore at all. Here each epoch's weights go to
    their own file, `epoch_<n>.weights.h5`, written atomically, and only then does the
    atomically written `training_metadata.json` name them; the previous weights are
    removed after that. Restoring reads the weights the metadata names. At the end of
    training the backup folder is deleted, as Keras does, unless `delete_checkpoint=False`:
    then the caller deletes it once the trained model is saved, so that a kill during the
    final save still leaves the last epoch's state (`experiments.run.run_one` does this).

    Keras has no public hook for the backup's files either, so this overrides the private
    `BackupAndRestore._save_model` / `_load_model` and reads `_training_metadata_path`,
    `_current_epoch` and sets `model._initial_epoch` (Keras 3.15); tests/test_files.py checks
    that they still behave.

    Example:
        backup = AtomicBackupAndRestore("runs/avae_mlp/backup")
        model.fit(x, epochs=10, callbacks=[backup])   # run again after a kill: resumes
    """

    def __init__(self, backup_dir, delete_checkpoint=True):
        super().__init__(os.fsdecode(backup_dir), save_freq="epoch", delete_checkpoint=delete_checkpoint)

    @property
    def restore_dir(self):
        """Where the backup is restored from: `backup_dir`, or on a worker other than the chief of a
        multi-worker job the chief's `backup_dir` (`keras_avae.distribute.run_directory`): only the
        chief's backup is kept, every worker restores it, and the others write theirs into their
        temporary run directory."""
        from keras_avae import distribute

        return distribute.chief_path(self.backup_dir)

    def _metadata(self, folder=None):
        path = os.path.join(folder, os.path.basename(self._training_metadata_path)) if folder else self._training_metadata_path
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as file:
            metadata = json.load(file)
        if not isinstance(metadata, dict) or "epoch" not in metadata or "weights" not in metadata:
            raise ValueError(f"Not a backup of this library (no `epoch` and `weights`): {path}")
        return metadata

    def on_train_begin(self, logs=None):
        self._load_model()

    def _load_model(self):
        metadata = self._metadata(self.restore_dir)
        if metadata is None:
            return
        if not self.model.built:
            raise ValueError(f"The model must be built before `fit` to restore the backup in {self.backup_dir}.")
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(self.restore_dir, metadata["weights"]))
        self.model._initial_epoch = int(metadata["epoch"])

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        previous = self._metadata()
        name = f"epoch_{self._current_epoch}.weights.h5"
        _save_weights(self.model, os.path.join(self.backup_dir, name))
        write_json(self._training_metadata_path, {"epoch": self._current_epoch, "batch": 0, "weights": name})
        if previous is not None and previous["weights"] != name:
            _remove(os.path.join(self.backup_dir, previous["weights"]))

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and os.path.isdir(self.backup_dir):
            shutil.rmtree(self.backup_dir)
