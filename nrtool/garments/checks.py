"""Is a garment what a model is for, and does it sit where the model's garments sat?

**Category from the shape** (for garments without ``garments.json`` metadata). Garments follow
the DrapeNet convention: the canonical SMPL body's frame, Y up, X the body's left-right axis,
rest pose (arms out sideways). A garment's *openings* (the connected pieces of its boundary)
tell what it is, whatever its position and size:

- a **bottom** has two *leg openings*: a pair of openings side by side (one left and one right
  of the garment's middle, neither at its lateral extremes) at its lower end;
- a **top** has two *arm openings*: a pair of openings on either side of its upper part (sleeve
  ends or armholes; a pair at the garment's lateral extremes counts too, as sleeves do when the
  arms hang down).

A pair is two openings of similar length (ratio <= 1.5) at similar heights. Openings shorter
than :data:`MIN_OPENING` of the garment's larger extent (a torn triangle, a small hole) are
ignored. Anything else is ``unclear`` and never refused: a skirt, shorts whose legs merge
below a low crotch, a tube top, a jumpsuit (arms and legs), a mesh without clean boundaries.
Calibration (``nrtool synth garments``, 90 tops and 40 bottoms, 6 seeds, 0.015-0.03 m): leg
pairs sit at relative height 0.00 and lateral offset 0.24-0.26 of the width (thresholds: height
< 0.5, offset 0.15-0.4), arm pairs at height 0.78-0.86 (>= 0.5) and offset 0.40-0.50; paired
openings differ by <= 0.001 in height and 1.2 % in length; the shortest opening is 0.24 of the
garment's size (threshold 0.1). All 90 tops came out ``top``, 36 bottoms ``bottom``, and 4
short shorts whose legs merge below the crotch ``unclear``; none the other category.

**Frame.** A model trained on garments that share one normalisation (synthetic sets, DrapeNet)
has learnt where garments sit in its cube; a garment elsewhere decodes badly (a real T-shirt
0.2 m above the frame: Chamfer 0.077 m, moved into it: 0.025 m). The checkpoint records the
training garments' *anchors* in the normalised frame: the middle of the bounding box in x and
z and its top line in y (shoulders/collar of a top, waistband of a bottom: where every garment
of a category starts, while hems and legs end at any height). A garment whose anchor is more
than :func:`TrainingFrame.tolerance` from the training mean (per axis: 4 standard deviations
of the training anchors, at least 0.03, i.e. 3.6 cm on the procedural body; procedural tops'
top lines vary by 0.006, bottoms' waistbands by 0.017) is *outside the frame*. The tiny test
model (45 steps) decodes held-out tops moved up by 0, 3, 6, 10, 20 cm at Chamfer 0.014,
0.019, 0.026, 0.035, 0.075 m. :func:`align_garment` translates a garment outside the frame so
its anchor matches the mean (a translation only: the scale is the body's, shared by the whole
category); garments inside are left alone, since their small offsets are garment features
(a waistband's height) that the codes should keep.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from nrtool.errors import InputFileError, NrtoolError
from nrtool.garments.data import GarmentMesh, check_in_cube

CATEGORY_OVERRIDE = "--no-category-check"
MIN_OPENING = 0.1  # openings shorter than this fraction of max(height, width) are ignored
SIDE = 0.15  # a side opening's centre is at least this fraction of the width off the middle
EXTREME = 0.4  # ... and one this far off is at the garment's lateral extremes (a sleeve end)
PAIR_HEIGHT = 0.15  # the two openings of a pair differ in relative height by at most this
PAIR_LENGTH = 1.5  # ... and in length by at most this ratio
FRAME_FLOOR = 0.03  # normalised units (3.6 cm on the procedural body): the least called "outside the frame"
FRAME_SIGMAS = 4.0  # ... or this many standard deviations of the training anchors


# --------------------------------------------------------------------------------------------
# Category from the shape
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opening:
    """One connected piece of a mesh's boundary."""

    length: float  # perimeter
    centre: np.ndarray  # (3,) length-weighted centre of its edges


@dataclass(frozen=True)
class ShapeVerdict:
    """What a garment looks like: ``top``, ``bottom`` or ``unclear``, and why."""

    category: str
    reason: str


def weld(vertices: np.ndarray, faces: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices closer than ``tolerance`` (grid rounding): ``(V, 3), (F, 3) -> (V', 3), (F', 3)``.

    Meshes exported with seams (per-face UVs, split normals) repeat vertices; without merging
    every seam would count as boundary.
    """
    keys = np.round(np.asarray(vertices, dtype=np.float64) / tolerance).astype(np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    merged = inverse.reshape(-1)[np.asarray(faces, dtype=np.int64)]
    keep = (merged[:, 0] != merged[:, 1]) & (merged[:, 1] != merged[:, 2]) & (merged[:, 0] != merged[:, 2])
    return np.asarray(vertices)[first], merged[keep]


def openings(vertices: np.ndarray, faces: np.ndarray) -> list[Opening]:
    """The boundary pieces of a mesh ``(V, 3), (F, 3)``, longest first (after welding seams)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from nrtool.geometry.topology import boundary_edges

    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    v, f = weld(vertices, faces, max(float(np.linalg.norm(hi - lo)), 1e-12) * 1e-6)
    edges = boundary_edges(f)
    if len(edges) == 0:
        return []
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(v), len(v)))
    _, labels = connected_components(graph, directed=False)
    piece = labels[edges[:, 0]]
    lengths = np.linalg.norm(v[edges[:, 1]] - v[edges[:, 0]], axis=1)
    mids = (v[edges[:, 1]] + v[edges[:, 0]]) / 2
    total = np.bincount(piece, weights=lengths)
    result = []
    for k in np.flatnonzero(total > 0):
        rows = piece == k
        result.append(Opening(float(total[k]), (mids[rows] * lengths[rows, None]).sum(axis=0) / total[k]))
    return sorted(result, key=lambda o: -o.length)


def shape_category(vertices: np.ndarray, faces: np.ndarray) -> ShapeVerdict:
    """``top`` (arm openings), ``bottom`` (leg openings) or ``unclear``, from ``(V, 3), (F, 3)`` (Y up).

    Invariant to translation and uniform scale: any frame in which Y is up and X is the body's
    left-right axis gives the same answer.
    """
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    width, height = float(hi[0] - lo[0]), float(hi[1] - lo[1])
    if width <= 0 or height <= 0:
        return ShapeVerdict("unclear", "flat along x or y")
    middle = (lo[0] + hi[0]) / 2
    found = [o for o in openings(vertices, faces) if o.length >= MIN_OPENING * max(width, height)]
    side = [((o.centre[0] - middle) / width, (o.centre[1] - lo[1]) / height, o.length) for o in found]
    arms = legs = False
    for i, (u1, t1, l1) in enumerate(side):
        for u2, t2, l2 in side[i + 1:]:
            if u1 * u2 >= 0 or min(abs(u1), abs(u2)) < SIDE:
                continue  # not one on each side of the middle
            if abs(t1 - t2) > PAIR_HEIGHT or max(l1, l2) > PAIR_LENGTH * min(l1, l2):
                continue  # not a matching pair
            if (t1 + t2) / 2 >= 0.5 or max(abs(u1), abs(u2)) >= EXTREME:
                arms = True
            else:
                legs = True
    if arms and not legs:
        return ShapeVerdict("top", "two arm openings on either side of its upper part")
    if legs and not arms:
        return ShapeVerdict("bottom", "two leg openings side by side at its lower end")
    if arms and legs:
        return ShapeVerdict("unclear", "both arm and leg openings")
    return ShapeVerdict("unclear", f"no pair of arm or leg openings among its {len(found)} openings")


def other_category(category: str) -> str:
    return "bottom" if category == "top" else "top"


def check_shape_categories(garments: Sequence[GarmentMesh], category: str, context: str,
                           override: str = CATEGORY_OVERRIDE) -> list[str]:
    """Refuse garments without metadata whose shape says the other category; notes otherwise.

    Only garments of category ``unknown`` are looked at (metadata is trusted). ``context``
    completes the message, e.g. "--category top was asked for" or "MODEL is a top model".
    Raises :class:`InputFileError` naming the first offending file, with the count.
    """
    unknown = [g for g in garments if g.category == "unknown"]
    if not unknown:
        return []
    verdicts = [(g, shape_category(g.vertices, g.faces)) for g in unknown]
    wrong = [(g, v) for g, v in verdicts if v.category == other_category(category)]
    if wrong:
        first, verdict = wrong[0]
        count = f"{len(wrong)} of {len(unknown)} garments without metadata look like {verdict.category}s"
        raise InputFileError(first.source, f"looks like a {verdict.category} ({verdict.reason}), but {context} "
                             f"({count}; pass {override} to use them anyway)")
    unclear = [(g, v) for g, v in verdicts if v.category == "unclear"]
    if unclear:
        first, verdict = unclear[0]
        return [f"{len(unclear)} of {len(unknown)} garments without metadata could not be told top or bottom from "
                f"their shape (not checked), e.g. {first.source}: {verdict.reason}"]
    return []


def shape_summary(garments: Sequence[GarmentMesh]) -> str:
    """``"3 look like tops, 1 like a bottom, 1 unclear"`` for garments without metadata."""
    counts = {"top": 0, "bottom": 0, "unclear": 0}
    for g in garments:
        if g.category == "unknown":
            counts[shape_category(g.vertices, g.faces).category] += 1
    parts = [f"{counts['top']} look like tops" if counts["top"] != 1 else "1 looks like a top",
             f"{counts['bottom']} like bottoms" if counts["bottom"] != 1 else "1 like a bottom"]
    if counts["unclear"]:
        parts.append(f"{counts['unclear']} unclear")
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------
# Frame
# --------------------------------------------------------------------------------------------


def frame_anchor(vertices: np.ndarray) -> np.ndarray:
    """``(V, 3) -> (3,)``: bounding-box middle in x and z, top line (max y) in y."""
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    return np.array([(lo[0] + hi[0]) / 2, hi[1], (lo[2] + hi[2]) / 2])


@dataclass(frozen=True)
class TrainingFrame:
    """Where a model's training garments sat, in its normalised frame (stored in the checkpoint)."""

    anchor_mean: np.ndarray  # (3,)
    anchor_std: np.ndarray  # (3,)
    box_lo: np.ndarray  # (3,) union of the training garments' boxes
    box_hi: np.ndarray  # (3,)
    count: int

    def tolerance(self) -> np.ndarray:
        """(3,) per-axis distance beyond which a garment is outside the frame (normalised units)."""
        return np.maximum(FRAME_SIGMAS * self.anchor_std, FRAME_FLOOR)

    def to_dict(self) -> dict[str, Any]:
        return {"anchor": "box middle x, top y, box middle z (normalised frame)",
                "anchor_mean": self.anchor_mean.tolist(), "anchor_std": self.anchor_std.tolist(),
                "box_lo": self.box_lo.tolist(), "box_hi": self.box_hi.tolist(), "count": self.count}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainingFrame":
        as_array = lambda key: np.asarray(data[key], dtype=np.float64).reshape(3)  # noqa: E731
        return cls(as_array("anchor_mean"), as_array("anchor_std"), as_array("box_lo"), as_array("box_hi"),
                   int(data["count"]))


def training_frame(garments: Sequence[GarmentMesh]) -> TrainingFrame:
    """The frame of a list of (normalised) garments."""
    anchors = np.stack([frame_anchor(g.vertices) for g in garments])
    return TrainingFrame(anchors.mean(axis=0), anchors.std(axis=0),
                         np.min([g.vertices.min(axis=0) for g in garments], axis=0),
                         np.max([g.vertices.max(axis=0) for g in garments], axis=0), len(garments))


def checkpoint_frame(checkpoint: dict[str, Any]) -> TrainingFrame | None:
    """The training frame a checkpoint records (None: written before nrtool recorded it)."""
    data = checkpoint.get("frame")
    return TrainingFrame.from_dict(data) if data else None


def frame_offset(garment: GarmentMesh, frame: TrainingFrame) -> np.ndarray:
    """(3,) garment anchor minus the training mean, normalised units."""
    return frame_anchor(garment.vertices) - frame.anchor_mean


def outside_frame(offset: np.ndarray, frame: TrainingFrame) -> bool:
    return bool(np.any(np.abs(offset) > frame.tolerance()))


def describe_offset(offset: np.ndarray, what: str = "the training garments' frame", unit: str = "m") -> str:
    """Where a garment sits relative to ``what``, from its source-unit offset (3,), for a message.

    ``"0.20 m above the training garments' frame (x +0.00, y +0.20, z +0.01 m)"``: the dominant
    axis in words (SMPL: +y up, +z the body's front), then the components.
    """
    axis = int(np.argmax(np.abs(offset)))
    words = (("on the -x side of", "on the +x side of"), ("below", "above"), ("behind", "in front of"))[axis]
    return f"{np.linalg.norm(offset):.2f} {unit} {words[int(offset[axis] > 0)]} {what} ({components(offset, unit)})"


def components(offset: np.ndarray, unit: str = "m") -> str:
    """``"x +0.00, y -0.20, z +0.01 m"`` (no ``-0.00``)."""
    x, y, z = (float(np.round(v, 2)) + 0.0 for v in offset)
    return f"x {x:+.2f}, y {y:+.2f}, z {z:+.2f} {unit}"


def align_garment(garment: GarmentMesh, offset: np.ndarray) -> tuple[GarmentMesh, np.ndarray]:
    """The garment translated by ``-offset`` (normalised, (3,)), and that translation in source units.

    The centre moves with it, so :meth:`GarmentMesh.to_source` (and every decoded mesh) stays
    in the garment's own frame: only what the network sees moves.
    """
    applied = -np.asarray(offset, dtype=np.float64) * garment.scale
    moved = replace(garment, vertices=garment.vertices - offset, centre=garment.centre - applied)
    return moved, applied


def frame_notes(garments: Sequence[GarmentMesh], frame: TrainingFrame | None, align: bool,
                model_path: str | os.PathLike[str]) -> tuple[list[GarmentMesh], np.ndarray, list[str]]:
    """Check (and with ``align`` fix) where each garment sits: garments, (N, 3) applied offsets, notes.

    Garments outside the frame are moved (``align``) so that their anchor matches the training
    mean; the others are left alone (their small offsets are part of what the codes describe,
    e.g. a waistband's height). Without ``align`` they stay where they are, with one note.
    Every garment must then lie in the decoder's cube. Offsets are in source units, what was
    added to each garment (zero where nothing moved).
    """
    offsets = np.zeros((len(garments), 3))
    if frame is None:
        if align:
            raise NrtoolError(f"{model_path}: the model holds no record of its training garments' frame (trained by "
                              "an older nrtool); --align needs one: retrain the model")
        for g in garments:
            check_in_cube(g)
        return list(garments), offsets, [f"{model_path} holds no record of its training garments' frame (an older "
                                         "checkpoint): garment positions not checked"]
    result, far = [], []
    for row, garment in enumerate(garments):
        offset = frame_offset(garment, frame)
        hint = ""
        if outside_frame(offset, frame):
            far.append((garment, offset * garment.scale))
            if align:
                garment, offsets[row] = align_garment(garment, offset)
            else:
                hint = f"it sits {describe_offset(far[-1][1])}: pass --align to move it there"
        check_in_cube(garment, hint)
        result.append(garment)
    if not far:
        return result, offsets, []
    first, shift = far[0]
    several = f"{len(far)} of {len(garments)} garments"
    if align:
        moved = -shift
        by = f"{np.linalg.norm(moved):.2f} m ({components(moved)})"
        what = f"{first.source} by {by}" if len(far) == 1 else f"{several}, e.g. {first.source} by {by}"
        return result, offsets, [f"moved {what} into the training garments' frame; the offsets are stored with the "
                                 "codes, and decoded meshes come back in each garment's own frame"]
    axis = int(np.argmax(np.abs(shift) / (frame.tolerance() * first.scale)))
    tol = float(frame.tolerance()[axis] * first.scale)
    if len(far) == 1:
        said = f"{first.source} sits {describe_offset(shift)}, more than {tol:.2f} m off: its code will decode poorly"
    else:
        said = (f"{several} sit outside the training garments' frame (more than {tol:.2f} m off: their codes will "
                f"decode poorly), e.g. {first.source} {describe_offset(shift)}")
    return result, offsets, [f"{said}; pass --align to move {'it' if len(far) == 1 else 'them'} into the frame"]
