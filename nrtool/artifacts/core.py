"""HDF5 artifacts: provenance attributes, kind checks, atomic writes.

Every file nrtool writes carries root attributes that say what it is and where it came from
(DESIGN.md, "Artifacts"). Readers check the kind before touching anything else, so feeding a
stage the wrong file fails with one line that names the file, the kind found and the kind wanted.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import secrets
import shutil
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from nrtool import __version__
from nrtool.distributed import is_follower
from nrtool.errors import InputFileError, NrtoolError

#: Current schema number of each artifact kind; bump on an incompatible layout change.
SCHEMAS: dict[str, int] = {"inrs": 1, "samples": 1, "embeddings": 1, "predictions": 1, "scan": 1, "body-sequence": 1, "garment-codes": 1, "drape": 1, "masks": 1, "fit": 1, "zoo": 1, "segmentation": 1}

STR_DTYPE = h5py.string_dtype(encoding="utf-8")


def sha256_file(path: str | os.PathLike[str], block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def provenance(inputs: Iterable[str | os.PathLike[str]]) -> list[dict[str, str]]:
    """``[{path, sha256}]`` of the artifacts/models a command read (absolute paths)."""
    return [{"path": str(Path(p).resolve()), "sha256": sha256_file(p)} for p in inputs]


def write_root_attrs(
    handle: h5py.File,
    kind: str,
    inputs: list[dict[str, str]] | None = None,
    command: list[str] | None = None,
) -> None:
    """Stamp the attributes every nrtool artifact carries on an open, writable file."""
    handle.attrs["nrtool_kind"] = kind
    handle.attrs["nrtool_schema"] = SCHEMAS[kind]
    handle.attrs["nrtool_version"] = __version__
    handle.attrs["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    handle.attrs["command"] = json.dumps(command if command is not None else sys.argv)
    handle.attrs["inputs"] = json.dumps(inputs or [])


#: The file that marks a folder as written by nrtool (what ``--force``/``--overwrite`` may replace).
FOLDER_MARKER = ".nrtool-folder.json"
#: Other files that mark a folder as nrtool's (resumable folders keep their own manifest).
FOLDER_MANIFESTS = (FOLDER_MARKER, ".nrtool-reconstruct.json")


def is_nrtool_folder(folder: str | os.PathLike[str]) -> bool:
    """True when ``folder`` holds the marker or manifest of an nrtool output folder."""
    return any((Path(folder) / name).is_file() for name in FOLDER_MANIFESTS)


def _umask() -> int:
    # os.umask can only be read by setting it; restore it at once (nrtool is single-threaded here).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temp_path(folder: Path, name: str, suffix: str) -> Path:
    """A fresh, unique, not-yet-existing hidden name in ``folder`` for ``name``'s temporary."""
    return folder / f".{name}.{secrets.token_hex(6)}{suffix}"


def _create_temp_file(folder: Path, name: str, suffix: str) -> tuple[int, Path]:
    """Create an empty temporary file beside ``name`` with the user's umask permissions.

    ``mkstemp`` would make it 0600, and the rename would carry that onto the final file: an
    artifact others on the machine cannot read, unlike every file the user writes otherwise.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = _temp_path(folder, name, suffix)
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def _create_temp_folder(parent: Path, name: str, suffix: str) -> Path:
    """Create a temporary folder beside ``name`` with the user's umask permissions (not 0700)."""
    while True:
        tmp = _temp_path(parent, name, suffix)
        try:
            os.mkdir(tmp, 0o777)
            return tmp
        except FileExistsError:
            continue


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file's (or a folder's entries') data to disk, so a rename that follows is durable."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if Path(path).is_dir() else os.O_RDONLY
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            fsync_path(Path(root) / name)
        fsync_path(root)


def _replace_durably(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` onto ``final`` after its data is on disk, then sync the folder entry.

    Without the first sync a crash shortly after the rename can leave ``final`` empty (the
    rename reached the disk before the data); without the second the rename itself can be lost.
    """
    fsync_path(tmp) if tmp.is_file() else _fsync_tree(tmp)
    os.replace(tmp, final)
    fsync_path(final.parent if str(final.parent) else Path("."))


def probe_writable(folder: str | os.PathLike[str], what: str | os.PathLike[str]) -> None:
    """Fail now, naming ``what``, when no file can be created in ``folder``.

    Creates and removes a temporary file: permission bits, read-only mounts, ACLs and quotas
    all show up, as they would at the end of a long run (and root passes ``os.access`` checks
    that a read-only file system then refuses).
    """
    try:
        fd, tmp = _create_temp_file(Path(folder), "nrtool-write-check", ".tmp")
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise InputFileError(what, f"cannot write in {folder} ({reason})") from exc
    os.close(fd)
    tmp.unlink(missing_ok=True)


def check_output_file(final: str | os.PathLike[str], what: str = "output") -> Path:
    """Fail early (before any work) when the file ``final`` cannot be written; returns it as a path.

    The folder must exist and be writable, and ``final`` must not be a folder.
    """
    final = Path(final)
    folder = final.parent if str(final.parent) else Path(".")
    if final.is_dir():
        raise InputFileError(final, f"is a folder, expected the {what} file's name")
    if not folder.exists():
        raise InputFileError(final, f"{what} folder {folder} does not exist")
    if not folder.is_dir():
        raise InputFileError(final, f"{folder} is not a folder")
    probe_writable(folder, final)
    return final


def check_output_dir(folder: str | os.PathLike[str], what: str = "output") -> Path:
    """Fail early when files cannot be written into ``folder`` (created later with its parents).

    An existing folder must be writable; a missing one needs a writable nearest ancestor.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputFileError(folder, f"exists and is not a folder (expected the {what} folder)")
    ancestor = folder
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputFileError(folder, f"{ancestor} is not a folder")
    probe_writable(ancestor, folder)
    return folder


def check_output_folder(final: str | os.PathLike[str], force: bool = False) -> Path:
    """Fail early (before any work) when ``final`` cannot be written; returns its parent.

    ``final`` may be missing or an empty folder. A non-empty one is replaced only with ``force``
    and only when nrtool wrote it (its marker file says so): ``--out ~/data --force`` must never
    delete a user's folder.
    """
    final = Path(final)
    parent = final.parent if str(final.parent) else Path(".")
    if not parent.is_dir():
        raise InputFileError(final, f"output folder's parent {parent} does not exist")
    if final.exists() and not final.is_dir():
        raise InputFileError(final, "exists and is not a folder")
    if final.is_dir() and any(final.iterdir()):
        if not is_nrtool_folder(final):
            raise InputFileError(final, "folder exists, is not empty and was not written by nrtool "
                                 "(not replacing it, even with --force/--overwrite; choose another --out)")
        if not force:
            raise InputFileError(final, "folder exists and is not empty (choose another --out, or pass --force/--overwrite)")
    probe_writable(parent, final)
    return parent


def write_folder_marker(folder: str | os.PathLike[str], command: list[str] | None = None) -> None:
    """Mark ``folder`` as an nrtool output (so a later ``--force`` may replace it)."""
    marker = {
        "nrtool_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command if command is not None else sys.argv,
    }
    atomic_write_bytes(Path(folder) / FOLDER_MARKER, (json.dumps(marker, indent=1) + "\n").encode())


@contextlib.contextmanager
def atomic_folder(final: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``final``; on success it replaces ``final``.

    ``final`` must not exist or be an empty folder, unless ``force`` and nrtool wrote it (then
    the old folder is removed, after the new one is complete). The new folder carries the
    marker of an nrtool folder, the user's umask permissions, and is synced to disk before
    the rename. On any error the temporary folder is removed.
    """
    final = Path(final)
    parent = check_output_folder(final, force)
    tmp = _create_temp_folder(parent, final.name, ".tmp")
    try:
        yield tmp
        if is_follower():  # a torchrun rank other than 0: rank 0 writes the output
            return
        write_folder_marker(tmp)
        if final.exists():
            old = _create_temp_folder(parent, final.name, ".old")
            os.replace(final, old / "replaced")
            _replace_durably(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            _replace_durably(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_output(final: str | os.PathLike[str], suffix: str = ".h5") -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` only on success.

    The temporary file lives in the same folder so the rename is atomic on POSIX: readers see
    either the old file or the complete new one, never a half-written one. It has the user's
    umask permissions, and it is synced to disk before the rename (the folder after it).
    """
    final = Path(final)
    folder = final.parent if str(final.parent) else Path(".")
    if not folder.is_dir():
        raise InputFileError(final, f"output folder {folder} does not exist")
    fd, tmp = _create_temp_file(folder, final.name, ".tmp" + suffix)
    os.close(fd)
    try:
        yield tmp
        if not is_follower():  # under torchrun rank 0 alone writes outputs
            _replace_durably(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``.

    The one atomic writer for single files whose bytes are in memory (shapes, ``.npy`` codes,
    JSON, PNG): a crash leaves either the old file or the new one, never a partial file under
    the final name, and a failed write removes the temporary file. Missing parent folders are
    created. The result has the permissions of an ordinarily written file (umask), and it is
    synced to disk around the rename. For files a library writes by path (HDF5,
    ``torch.save``) use :func:`atomic_output`.
    """
    if is_follower():  # under torchrun rank 0 alone writes outputs
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp_file(path.parent, path.name, ".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        _replace_durably(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class OutputBusyError(InputFileError):
    """Another process holds the lock of an output (exit status 2, like every user error)."""


class OutputLock:
    """An exclusive lock on one output, held by one run: ``OUT.lock`` beside it (``fcntl.flock``).

    Two runs writing one resumable output would share its ``.parts``/``.partial`` state and
    delete each other's work; the second run is refused at once with the first one's pid. The
    kernel drops the lock when its holder dies, so a killed run never leaves a stale lock.
    """

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out)
        self.path = self.out.with_name(self.out.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> "OutputLock":
        import fcntl

        if is_follower():  # the torchrun job's rank 0 holds the lock for all its ranks
            return self
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise OutputBusyError(self.out, f"another nrtool run (pid {holder}) is writing it "
                                      f"(lock {self.path.name}); wait for it or stop it") from None
            # The last holder unlinks the file on release: if it did so between our open and
            # our flock, we locked an orphan inode and must try again on the new file.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)  # while still holding it (see acquire)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def output_lock(out: str | os.PathLike[str]) -> OutputLock:
    """The lock of ``out`` (use as ``with output_lock(out): ...``)."""
    return OutputLock(out)


def holds_output_lock(parameter: str):
    """Decorator: hold the lock of the function's ``parameter`` (a path) for the whole call."""
    import functools
    import inspect

    def decorate(function):
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            with output_lock(bound.arguments[parameter]):
                return function(*args, **kwargs)

        return wrapper

    return decorate


def open_artifact(path: str | os.PathLike[str], kinds: str | Iterable[str] | None = None) -> h5py.File:
    """Open an nrtool artifact read-only, checking that it is one and of an accepted kind.

    Raises :class:`InputFileError` naming the file for: missing, empty, not HDF5, not written
    by nrtool, wrong kind, or a schema newer than this version understands.
    """
    path = Path(path)
    wanted = {kinds} if isinstance(kinds, str) else (set(kinds) if kinds is not None else None)
    if not path.exists():
        raise InputFileError(path, "no such file")
    if path.is_dir():
        raise InputFileError(path, "is a folder, expected an HDF5 artifact")
    if path.stat().st_size == 0:
        raise InputFileError(path, "empty file, expected an HDF5 artifact")
    if not h5py.is_hdf5(path):
        raise InputFileError(path, "not an HDF5 file (corrupt, or not an nrtool artifact)")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:  # truncated or damaged HDF5
        raise InputFileError(path, f"cannot read HDF5 file ({exc})") from exc
    kind = handle.attrs.get("nrtool_kind")
    if kind is None:
        handle.close()
        raise InputFileError(path, "HDF5 file without an nrtool_kind attribute (not an nrtool artifact)")
    kind = str(kind)
    if wanted is not None and kind not in wanted:
        handle.close()
        expected = " or ".join(repr(k) for k in sorted(wanted))
        raise InputFileError(path, f"is a {kind!r} artifact, expected {expected}")
    schema = int(handle.attrs.get("nrtool_schema", 0))
    if kind in SCHEMAS and schema > SCHEMAS[kind]:
        handle.close()
        raise InputFileError(
            path, f"{kind!r} schema {schema} is newer than this nrtool understands ({SCHEMAS[kind]}); upgrade nrtool"
        )
    return handle


def _attr_value(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        try:
            return json.loads(value) if value[:1] in "[{" else value
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def describe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What an artifact holds: kind, schema, provenance, attributes and every dataset's shape."""
    with open_artifact(path) as handle:
        attrs = {key: _attr_value(val) for key, val in handle.attrs.items()}
        datasets: dict[str, dict[str, Any]] = {}

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                datasets[name] = {"shape": list(obj.shape), "dtype": str(obj.dtype)}

        handle.visititems(visit)
        summary: dict[str, Any] = {"path": str(path), "kind": attrs.pop("nrtool_kind")}
        summary["schema"] = attrs.pop("nrtool_schema", None)
        summary["version"] = attrs.pop("nrtool_version", None)
        summary["created"] = attrs.pop("created", None)
        summary["command"] = attrs.pop("command", None)
        summary["inputs"] = attrs.pop("inputs", [])
        if "names" in handle:
            summary["items"] = int(handle["names"].shape[0])
        if "labels" in handle and "classes" in attrs:
            labels = handle["labels"][()]
            classes = attrs["classes"]
            summary["per_class"] = {
                str(c): int((labels == i).sum()) for i, c in enumerate(classes) if (labels == i).any()
            }
        if "split" in handle:
            splits = [s.decode() if isinstance(s, bytes) else str(s) for s in handle["split"][()]]
            summary["per_split"] = {s: splits.count(s) for s in sorted(set(splits))}
        summary["attributes"] = attrs
        summary["datasets"] = datasets
        return summary


def item_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an item name, or ``None`` when it can.

    Item names become file names (``reconstruct``, ``garment decode``, ``export nerf``), so a
    name must be one path component: not empty, no ``/`` or ``\\``, not ``.`` or ``..``, no NUL or
    other control characters.
    """
    if not name:
        return "an empty item name"
    if name in (".", ".."):
        return f"item name {name!r} is not a file name"
    if "/" in name or "\\" in name:
        return f"item name {name!r} contains a path separator"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return f"item name {name!r} contains a control character"
    return None


def check_item_names(names: Iterable[str], where: str | os.PathLike[str]) -> None:
    """Refuse, with one line naming ``where``, any name that is not a single path component.

    Called on read (a hostile or damaged artifact cannot make us write outside an output
    folder) and on write (we never store such a name).
    """
    for name in names:
        problem = item_name_problem(name)
        if problem is not None:
            raise InputFileError(where, f"{problem} (names must be plain file names; refusing this artifact)")


def safe_child(folder: str | os.PathLike[str], name: str, suffix: str = "") -> Path:
    """``folder / (name + suffix)`` after checking that ``name`` is one path component."""
    problem = item_name_problem(name)
    if problem is not None:
        raise NrtoolError(f"refusing to write {problem} under {folder}")
    return Path(folder) / f"{name}{suffix}"


@dataclass
class ItemInfo:
    """What every item-aligned artifact stores about where an item came from."""

    name: str
    class_name: str | None
    split: str | None
    source: str
    source_index: int
    center: np.ndarray  # (3,)
    scale: float
    #: SHA-256 of the source file's bytes when the item was made ("" = not recorded): what a
    #: resumed or appended run compares to tell an edited source from an unchanged one.
    source_sha256: str = field(default="", kw_only=True)


def write_item_table(handle: h5py.File, items: Sequence[ItemInfo]) -> list[str]:
    """Write the item-aligned provenance datasets shared by artifact kinds; returns ``classes``.

    ``names``, ``labels`` (index into the ``classes`` attribute, -1 unknown), ``split``,
    ``sources``, ``source_sha256``, ``source_index``, ``center`` and ``scale``
    (``x_source = x * scale + center``).
    """
    check_item_names((item.name for item in items), handle.filename)
    classes = sorted({item.class_name for item in items if item.class_name is not None})
    handle.attrs["classes"] = json.dumps(classes)
    handle["names"] = np.array([i.name for i in items], dtype=object).astype(STR_DTYPE)
    handle["labels"] = np.array(
        [classes.index(i.class_name) if i.class_name is not None else -1 for i in items], dtype=np.int64
    )
    handle["split"] = np.array([i.split or "" for i in items], dtype=object).astype(STR_DTYPE)
    handle["sources"] = np.array([i.source for i in items], dtype=object).astype(STR_DTYPE)
    handle["source_sha256"] = np.array([i.source_sha256 for i in items], dtype=object).astype(STR_DTYPE)
    handle["source_index"] = np.array([i.source_index for i in items], dtype=np.int64)
    handle["center"] = np.stack([i.center for i in items]).astype(np.float64)
    handle["scale"] = np.array([i.scale for i in items], dtype=np.float64)
    return classes


def read_item_table(handle: h5py.File, class_names: Sequence[str | None] | None = None) -> list[ItemInfo]:
    """The items written by :func:`write_item_table`.

    ``class_names`` overrides the names derived from ``labels`` + ``classes`` (for kinds whose
    ``labels`` index another class list, such as a model's).
    """
    if class_names is None:
        classes = json.loads(handle.attrs.get("classes", "[]"))
        class_names = [classes[label] if label >= 0 else None for label in handle["labels"][()]]
    names = read_strings(handle["names"])
    check_item_names(names, handle.filename)
    splits = read_strings(handle["split"])
    sources = read_strings(handle["sources"])
    # Older artifacts have no content hashes: "" means "not recorded".
    hashes = read_strings(handle["source_sha256"]) if "source_sha256" in handle else [""] * len(names)
    source_index = handle["source_index"][()]
    center = handle["center"][()]
    scale = handle["scale"][()]
    return [
        ItemInfo(
            name=name,
            class_name=class_names[i] or None,
            split=splits[i] or None,
            source=sources[i],
            source_index=int(source_index[i]),
            center=center[i],
            scale=float(scale[i]),
            source_sha256=hashes[i],
        )
        for i, name in enumerate(names)
    ]


def read_strings(dataset: h5py.Dataset) -> list[str]:
    """A 1-D string dataset as Python strings."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in dataset[()]]


__all__ = [
    "SCHEMAS",
    "STR_DTYPE",
    "NrtoolError",
    "FOLDER_MARKER",
    "OutputBusyError",
    "OutputLock",
    "atomic_folder",
    "atomic_output",
    "atomic_write_bytes",
    "check_item_names",
    "check_output_dir",
    "check_output_file",
    "check_output_folder",
    "fsync_path",
    "holds_output_lock",
    "is_nrtool_folder",
    "output_lock",
    "probe_writable",
    "write_folder_marker",
    "item_name_problem",
    "safe_child",
    "describe",
    "open_artifact",
    "provenance",
    "read_strings",
    "sha256_file",
    "write_root_attrs",
]


def read_vectors_npy(path: str | os.PathLike[str]) -> tuple[np.ndarray, list[ItemInfo]]:
    """A ``.npy`` of one vector (D,) or several (N, D) as float32 (N, D), with an item per row
    (named after the file, ``STEM_007`` when several); one line naming the file if it is not one."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError(p, "no such file")
    try:
        array = np.load(p, allow_pickle=False)  # never unpickle a user's file
    except (ValueError, OSError) as exc:
        raise InputFileError(p, f"not a readable .npy array ({exc})") from exc
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.floating):
        raise InputFileError(p, f"expected a float array of shape (D,) or (N, D), got {array.dtype} {array.shape}")
    items = [ItemInfo(f"{p.stem}_{i:03d}" if len(array) > 1 else p.stem, None, None, str(p), i, np.zeros(3), 1.0)
             for i in range(len(array))]
    return array.astype(np.float32), items
