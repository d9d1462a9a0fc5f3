"""Finding the inputs of a run: files, folders (ModelNet-style labels and splits) and list files,
each turned into a :class:`ShapeSource` with a unique name."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nrtool.errors import InputFileError, NrtoolError
from nrtool.io.shapes import (
    LIST_EXTENSIONS,
    SPLIT_NAMES,
    SUPPORTED_EXTENSIONS,
    PathLike,
    describe_error,
    unsupported_extension_problem,
)


@dataclass
class ShapeSource:
    """One shape file to process, as found by :func:`discover_inputs`.

    Attributes:
        path: the file (as given or joined to its folder/list file; not resolved).
        name: unique among the sources of one :func:`discover_inputs` call.
        class_name: the class folder of a ModelNet-style layout, else None.
        split: ``"train"``, ``"test"`` or ``"val"`` where the layout says so, else None.
    """

    path: str
    name: str
    class_name: str | None
    split: str | None


@dataclass
class _Found:
    path: Path
    rel_parts: tuple[str, ...]  # path relative to the folder it was found in (naming fallback)
    class_name: str | None
    split: str | None


def _layout_labels(rel_dirs: Sequence[str]) -> tuple[str | None, str | None]:
    """Class and split from the folders between an input folder and a file.

    ``CLASS/SPLIT/file`` and ``SPLIT/CLASS/file`` give both, ``CLASS/file`` the class only,
    ``SPLIT/file`` the split only. In deeper trees the split folder is looked for at any depth
    and the class is the folder next to it, so the parent of several ModelNet-style roots
    (``ROOT/DATASET/CLASS/SPLIT/file``) is labelled by class and split, not by dataset name;
    without a split folder the first folder is the class.
    """
    if not rel_dirs:
        return None, None
    lowered = [d.lower() for d in rel_dirs]
    at = next((i for i, d in enumerate(lowered) if d in SPLIT_NAMES), None)
    if at is None:
        return rel_dirs[0], None
    if at == 0:
        return (rel_dirs[1] if len(rel_dirs) > 1 else None), lowered[0]
    return rel_dirs[at - 1], lowered[at]


def _tail_labels(path: Path) -> tuple[str | None, str | None]:
    """Class and split from the last folders of a path, only for ``.../CLASS/SPLIT/file``."""
    parent = path.parent
    if parent.name.lower() in SPLIT_NAMES and parent.parent.name not in ("", ".", ".."):
        return parent.parent.name, parent.name.lower()
    return None, None


def _is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_EXTENSIONS


def _scan_directory(root: Path, prefix: tuple[str, ...] = ()) -> list[_Found]:
    """Supported files under ``root``, recursively, hidden files and folders skipped.

    ``prefix`` holds folders between a list file and ``root``, so a folder listed in a list file
    gets its labels from the layout seen from the list file's folder.
    """
    found: list[tuple[tuple[str, ...], Path]] = []
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel_folder = Path(folder).relative_to(root).parts
        for filename in filenames:
            if filename.startswith(".") or not _is_supported(Path(filename)):
                continue
            found.append((rel_folder + (filename,), Path(folder) / filename))
    found.sort(key=lambda item: item[0])  # compare path components, not joined strings
    out = []
    for rel_parts, path in found:
        class_name, split = _layout_labels(prefix + rel_parts[:-1])
        out.append(_Found(path, prefix + rel_parts, class_name, split))
    return out


def _read_list_file(list_path: Path) -> list[_Found]:
    """Files named in a list file, one path per line, relative to the list file's folder."""
    try:
        lines = list_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(list_path, f"cannot read list file ({describe_error(exc)})") from exc
    out: list[_Found] = []
    for number, line in enumerate(lines, start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        entry_path = Path(entry).expanduser()
        path = entry_path if entry_path.is_absolute() else list_path.parent / entry_path
        if not path.exists():
            raise InputFileError(
                path, f"no such file or directory (listed in {list_path}:{number})"
            )
        # A relative entry inside the list's folder is laid out like a folder input would be;
        # anything else only trusts the unambiguous .../CLASS/SPLIT/file tail.
        inside = not entry_path.is_absolute() and ".." not in entry_path.parts
        rel = tuple(part for part in entry_path.parts if part != ".") if inside else ()
        if path.is_dir():
            found = _scan_directory(path, prefix=rel)
            if not found:
                raise InputFileError(
                    path, f"contains no supported shape files (listed in {list_path}:{number})"
                )
            out.extend(found)
            continue
        if not _is_supported(path):
            raise InputFileError(
                path,
                f"{unsupported_extension_problem(path.suffix.lower())} "
                f"(listed in {list_path}:{number})",
            )
        class_name, split = _layout_labels(rel[:-1]) if inside else _tail_labels(path)
        out.append(_Found(path, rel or (path.name,), class_name, split))
    if not out:
        raise InputFileError(list_path, "list file names no shape files")
    return out


def _unique_names(found: Sequence[_Found]) -> list[str]:
    """File stems, disambiguated deterministically where two sources would share one.

    Colliding stems are first prefixed with class and split (``chair_train_model``); names
    still colliding are built from the whole relative path; any remaining ties get ``_2``,
    ``_3``, ... in source order.
    """
    names = [f.path.stem for f in found]
    counts = Counter(names)
    names = [
        "_".join(x for x in (f.class_name, f.split, n) if x) if counts[n] > 1 else n
        for f, n in zip(found, names)
    ]
    counts = Counter(names)
    names = [
        "_".join((*f.rel_parts[:-1], Path(f.rel_parts[-1]).stem)) if counts[n] > 1 else n
        for f, n in zip(found, names)
    ]
    taken = set(names)
    used: set[str] = set()
    unique = []
    for name in names:
        candidate, k = name, 1
        # Skip suffixed names that another source already carries as its own name.
        while candidate in used or (candidate != name and candidate in taken):
            k += 1
            candidate = f"{name}_{k}"
        used.add(candidate)
        unique.append(candidate)
    return unique


def discover_inputs(inputs: Sequence[PathLike]) -> list[ShapeSource]:
    """Expand files, folders and list files into shape sources with unique names.

    Each input is one of:

    - a file with a supported extension (no class or split);
    - a folder, searched recursively in sorted order for supported files (hidden files and
      folders skipped); ModelNet-style ``ROOT/CLASS/{train,test,val}/FILE`` gives class and
      split, ``ROOT/CLASS/FILE`` the class only, always relative to the folder given;
    - a ``.txt``/``.lst`` file listing paths (files or folders) one per line, relative to the
      list file's folder; ``#`` comments and blank lines are ignored.

    Sources keep input order (folders sorted, lists in listed order); a file reached twice is
    kept once, at its first position.

    Raises:
        InputFileError: an input or listed path is missing, a folder holds no supported file,
            a file given or listed explicitly has an unsupported extension.
        NrtoolError: ``inputs`` is empty.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]  # a lone path is an easy mistake; a str is a Sequence of chars
    if not inputs:
        raise NrtoolError("no input files given")
    found: list[_Found] = []
    for item in inputs:
        p = Path(item).expanduser()
        if not p.exists():
            raise InputFileError(p, "no such file or directory")
        if p.is_dir():
            items = _scan_directory(p)
            if not items:
                raise InputFileError(
                    p, f"contains no supported shape files ({' '.join(SUPPORTED_EXTENSIONS)})"
                )
            found.extend(items)
        elif p.suffix.lower() in LIST_EXTENSIONS:
            found.extend(_read_list_file(p))
        elif _is_supported(p):
            found.append(_Found(p, (p.name,), None, None))
        else:
            raise InputFileError(
                p, unsupported_extension_problem(p.suffix.lower()) + " (or a .txt/.lst list)"
            )

    seen: set[str] = set()
    deduplicated = []
    for f in found:
        key = os.path.realpath(f.path)
        if key not in seen:
            seen.add(key)
            deduplicated.append(f)
    names = _unique_names(deduplicated)
    return [
        ShapeSource(path=str(f.path), name=name, class_name=f.class_name, split=f.split)
        for f, name in zip(deduplicated, names)
    ]
