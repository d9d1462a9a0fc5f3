"""The garment network (encoder + decoder) and its checkpoint.

A checkpoint records the category it was trained on (``top`` or ``bottom``): one model per
category, and codes of one category are meaningless to the other's decoder. Since issue 11 it
also records ``frame``, where the training garments sat in the normalised frame
(:class:`nrtool.garments.checks.TrainingFrame`); checkpoints without it still load (their
garments' positions cannot be checked).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from nrtool.errors import InputFileError, NrtoolError
from nrtool.garments.config import GarmentConfig
from nrtool.garments.decoder import UdfDecoder
from nrtool.garments.encoder import DgcnnEncoder

CHECKPOINT_FORMAT = "nrtool-garment"
CHECKPOINT_VERSION = 1


class GarmentNet(nn.Module):
    def __init__(self, config: GarmentConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = DgcnnEncoder(config.encoder_widths, config.k, config.code_dim)
        self.decoder = UdfDecoder(config.code_dim, config.decoder_hidden, config.decoder_blocks,
                                  config.pe_frequencies, config.delta)

    def udf_fn(self, code: torch.Tensor):
        """``(M, 3) -> (M,)`` UDF of one code ``(D,)`` (for meshing)."""
        def fn(points: torch.Tensor) -> torch.Tensor:
            return self.decoder.udf(code.unsqueeze(0), points.unsqueeze(0))[0]
        return fn


def save_model(path: str | os.PathLike[str], model: GarmentNet, category: str, extra: dict[str, Any]) -> None:
    from nrtool.checkpoints import save_checkpoint

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION,
                    {"config": model.config.to_dict(), "category": category, "state_dict": state, **extra})


def load_model(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> tuple[GarmentNet, dict[str, Any]]:
    """A garment checkpoint (read with ``weights_only=True``), in eval mode, and its metadata."""
    from nrtool.checkpoints import load_checkpoint

    checkpoint = load_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "garment", "nrtool train garment")
    return model_from_checkpoint(checkpoint, path, device), checkpoint


def model_from_checkpoint(checkpoint: dict[str, Any], path: str | os.PathLike[str],
                          device: torch.device | str = "cpu") -> GarmentNet:
    """The garment network of a checkpoint dictionary (a file's, or one embedded in a draping
    checkpoint), in eval mode; ``path`` names it in the error if it does not fit."""
    from nrtool.checkpoints import damaged

    try:
        model = GarmentNet(GarmentConfig.from_dict(checkpoint["config"]))
        model.load_state_dict(checkpoint["state_dict"])
        if checkpoint["category"] not in ("top", "bottom"):
            raise ValueError(f"unknown category {checkpoint['category']!r}")
        if checkpoint.get("frame"):
            from nrtool.garments.checks import TrainingFrame

            TrainingFrame.from_dict(checkpoint["frame"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise damaged(path, "garment", exc) from exc
    return model.to(device).eval()


def training_normalisation(checkpoint: dict[str, Any]) -> tuple[np.ndarray, float]:
    """``(centre (3,), scale)`` that put the network's normalised frame into the body's frame
    (``x * scale + centre``): its training garments' common normalisation; the identity without one."""
    norm = checkpoint.get("normalise") or {"centre": [0.0, 0.0, 0.0], "scale": 1.0}
    return np.asarray(norm["centre"], dtype=np.float64), float(norm["scale"])


def training_codes(checkpoint: dict[str, Any]) -> np.ndarray:
    """(N, D) codes of the training garments stored in a checkpoint."""
    return checkpoint["train"]["codes"].numpy().astype(np.float32)


def training_attributes(checkpoint: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(checkpoint["train"]["attributes"])


def check_category(found: str | None, checkpoint: dict[str, Any], codes_path: str | os.PathLike[str],
                   model_path: str | os.PathLike[str]) -> None:
    """Refuse codes of the other category than the model's (a top model on bottom codes)."""
    wanted = checkpoint["category"]
    if found not in (None, "", "unknown") and found != wanted:
        raise InputFileError(codes_path, f"holds {found} codes, but {model_path} is a {wanted} model "
                             f"(use the {found} model: one model per category)")


def check_code_width(codes: np.ndarray, checkpoint: dict[str, Any], path: str | os.PathLike[str]) -> None:
    width = int(checkpoint["config"]["code_dim"])
    if codes.ndim != 2 or codes.shape[1] != width:
        raise InputFileError(path, f"codes of width {codes.shape[-1] if codes.ndim else 0}, the model wants {width}")
    if not np.all(np.isfinite(codes)):
        raise InputFileError(path, "codes contain NaN or infinite values")
    if len(codes) == 0:
        raise NrtoolError(f"{path}: no codes")
