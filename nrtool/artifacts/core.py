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
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from nrtool import __version__
from nrtool.errors import InputFileError, NrtoolError

#: Current schema number of each artifact kind; bump on an incompatible layout change.
SCHEMAS: dict[str, int] = {"inrs": 1, "samples": 1, "embeddings": 1, "predictions": 1, "scan": 1, "body-sequence": 1, "garment-codes": 1}

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


def check_output_folder(final: str | os.PathLike[str], force: bool = False) -> Path:
    """Fail early (before any work) when ``final`` cannot be written; returns its parent."""
    final = Path(final)
    parent = final.parent if str(final.parent) else Path(".")
    if not parent.is_dir():
        raise InputFileError(final, f"output folder's parent {parent} does not exist")
    if final.exists() and not final.is_dir():
        raise InputFileError(final, "exists and is not a folder")
    if final.is_dir() and any(final.iterdir()) and not force:
        raise InputFileError(final, "folder exists and is not empty (choose another --out, or pass --force/--overwrite)")
    return parent


@contextlib.contextmanager
def atomic_folder(final: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``final``; on success it replaces ``final``.

    ``final`` must not exist or be an empty folder, unless ``force`` (then the old folder is
    removed, after the new one is complete). On any error the temporary folder is removed.
    """
    final = Path(final)
    parent = check_output_folder(final, force)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=parent))
    try:
        yield tmp
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=parent))
            os.replace(final, old / "replaced")
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_output(final: str | os.PathLike[str], suffix: str = ".h5") -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` only on success.

    The temporary file lives in the same folder so the rename is atomic on POSIX: readers see
    either the old file or the complete new one, never a half-written one.
    """
    final = Path(final)
    folder = final.parent if str(final.parent) else Path(".")
    if not folder.is_dir():
        raise InputFileError(final, f"output folder {folder} does not exist")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp" + suffix, dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``.

    The one atomic writer for single files whose bytes are in memory (shapes, ``.npy`` codes,
    JSON, PNG): a crash leaves either the old file or the new one, never a partial file under
    the final name, and a failed write removes the temporary file. Missing parent folders are
    created. The temporary file is created with mode 0o666 (minus umask), so the result gets the
    same permissions as an ordinarily written file (mkstemp would make it private, 0o600). For
    files a library writes by path (HDF5, ``torch.save``) use :func:`atomic_output`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


def write_item_table(handle: h5py.File, items: Sequence[ItemInfo]) -> list[str]:
    """Write the item-aligned provenance datasets shared by artifact kinds; returns ``classes``.

    ``names``, ``labels`` (index into the ``classes`` attribute, -1 unknown), ``split``,
    ``sources``, ``source_index``, ``center`` and ``scale`` (``x_source = x * scale + center``).
    """
    classes = sorted({item.class_name for item in items if item.class_name is not None})
    handle.attrs["classes"] = json.dumps(classes)
    handle["names"] = np.array([i.name for i in items], dtype=object).astype(STR_DTYPE)
    handle["labels"] = np.array(
        [classes.index(i.class_name) if i.class_name is not None else -1 for i in items], dtype=np.int64
    )
    handle["split"] = np.array([i.split or "" for i in items], dtype=object).astype(STR_DTYPE)
    handle["sources"] = np.array([i.source for i in items], dtype=object).astype(STR_DTYPE)
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
    splits = read_strings(handle["split"])
    sources = read_strings(handle["sources"])
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
        )
        for i, name in enumerate(read_strings(handle["names"]))
    ]


def read_strings(dataset: h5py.Dataset) -> list[str]:
    """A 1-D string dataset as Python strings."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in dataset[()]]


__all__ = [
    "SCHEMAS",
    "STR_DTYPE",
    "NrtoolError",
    "atomic_output",
    "atomic_write_bytes",
    "describe",
    "open_artifact",
    "provenance",
    "read_strings",
    "sha256_file",
    "write_root_attrs",
]
