"""Model checkpoints: plain data + tensors, written atomically, read with ``weights_only=True``.

Every nrtool model (inr2vec, classifiers, PointNet) is one ``torch.save`` dictionary with a
``format`` tag and a ``version``. Reading never unpickles arbitrary objects (DESIGN.md), and
every problem becomes one line naming the file.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from nrtool.errors import InputFileError


def save_checkpoint(path: str | os.PathLike[str], fmt: str, version: int, payload: dict[str, Any]) -> None:
    """Write ``{format, version, **payload}`` atomically (temp file beside it, then rename)."""
    import torch

    from nrtool.artifacts.core import atomic_output

    with atomic_output(path, suffix=Path(path).suffix or ".pt") as tmp:
        torch.save({"format": fmt, "version": version, **payload}, tmp)


def _first_sentence(exc: BaseException, limit: int = 160) -> str:
    # torch's messages run on with advice that does not apply to a user's file.
    text = str(exc).strip()
    return (text.splitlines()[0].split(". ")[0] if text else type(exc).__name__)[:limit]


def load_checkpoint(path: str | os.PathLike[str], fmt: str, version: int, what: str, made_by: str) -> dict[str, Any]:
    """The checkpoint dictionary at ``path`` if it is a ``fmt`` checkpoint of at most ``version``.

    ``what`` names the model for messages ("classifier"), ``made_by`` the command that writes it.
    """
    import torch

    path = Path(path)
    wanted = f"a {what} checkpoint from `{made_by}`"
    if not path.exists():
        raise InputFileError(path, f"no such file ({wanted})")
    if path.is_dir():
        raise InputFileError(path, f"is a folder, expected {wanted}")
    if path.stat().st_size == 0:
        raise InputFileError(path, f"empty file, expected {wanted}")
    with open(path, "rb") as handle:
        magic = handle.read(8)
    # torch.save writes a zip archive ("PK"); refuse anything else before torch's loader, whose
    # errors on foreign files are long or cryptic.
    if not magic.startswith(b"PK"):
        kind = "an HDF5 file" if magic.startswith(b"\x89HDF") else "not a PyTorch file"
        raise InputFileError(path, f"not {wanted} ({kind})")
    try:
        # weights_only: never unpickle arbitrary objects from a file the user may not have made.
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise InputFileError(path, f"not an nrtool {what} checkpoint (holds objects other than tensors and "
                             "plain data; not loaded, for safety)") from exc
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise InputFileError(path, f"not a readable {what} checkpoint, damaged or truncated ({_first_sentence(exc)})") from exc
    if not isinstance(data, dict) or data.get("format") != fmt:
        found = f" (it is a {data['format']} checkpoint)" if isinstance(data, dict) and data.get("format") else ""
        raise InputFileError(path, f"not {wanted}{found}")
    if int(data.get("version", 0)) > version:
        raise InputFileError(path, f"checkpoint version {data['version']} is newer than this nrtool understands")
    return data


def damaged(path: str | os.PathLike[str], what: str, exc: BaseException) -> InputFileError:
    """The error for a checkpoint whose contents do not fit its model."""
    return InputFileError(path, f"damaged {what} checkpoint ({_first_sentence(exc, 200)})")
