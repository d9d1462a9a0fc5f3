"""``nrtool synth ...``: procedural data for tests and demos."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nrtool.cli.app import synth_app
from nrtool.cli.common import FORCE_OPTION, OPTIONS


@synth_app.command("shapes")
def shapes(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write CLASS/{train,test}/CLASS_NNNN.ply into."),
    classes: Optional[int] = typer.Option(None, help="Number of classes (primitive families; default 4, with --parts all 5)."),
    per_class: int = typer.Option(5, help="Shapes per class."),
    seed: int = typer.Option(0, help="Random seed (same seed, same files)."),
    test_fraction: float = typer.Option(0.25, help="Fraction of each class put in test/."),
    families: str = typer.Option("", help="Comma-separated families to use as the classes instead of the first --classes "
                                  "(ellipsoid, box, cylinder, cone, torus, capsule, star_prism, twisted_box, bent_capsule, peanut; "
                                  "with --parts: airplane, chair, lamp, mug, table)."),
    parts: bool = typer.Option(False, "--parts", help="Part-labelled point clouds (.npz: points, labels, part_names) of objects "
                               "assembled from primitives, for part segmentation, instead of meshes."),
    points: int = typer.Option(2048, help="Points per cloud (--parts; ShapeNet-Part uses 2048)."),
    force: bool = FORCE_OPTION,
) -> None:
    """A labelled dataset of watertight procedural meshes (or, with --parts, part-labelled clouds) in the ModelNet-style layout.

    Example: `nrtool synth shapes --out shapes/ --classes 4 --per-class 5 --seed 0`;
    `nrtool synth shapes --parts --out parts/ --per-class 12`
    """
    from nrtool.errors import NrtoolError

    classes = classes if classes is not None else (5 if parts else 4)
    if classes < 1 or per_class < 1:
        raise NrtoolError("--classes and --per-class must be at least 1")
    if not 0 <= test_fraction < 1:
        raise NrtoolError("--test-fraction must be in [0, 1)")
    from nrtool.artifacts.core import atomic_folder

    chosen = [f.strip() for f in families.split(",") if f.strip()]
    with atomic_folder(out, force=force) as staging:
        if parts:
            from nrtool.synth.parts import PART_CLASSES, make_part_dataset

            if not chosen and classes > len(PART_CLASSES):
                raise NrtoolError(f"--parts has {len(PART_CLASSES)} classes ({', '.join(PART_CLASSES)}), not {classes}")
            chosen = chosen or list(PART_CLASSES)[:classes]
            paths = make_part_dataset(staging, chosen, per_class=per_class, seed=seed, test_fraction=test_fraction,
                                      points=points)
        else:
            from nrtool.synth.shapes import make_shape_dataset

            paths = make_shape_dataset(staging, classes=classes, per_class=per_class, seed=seed,
                                       test_fraction=test_fraction, families=chosen or None)
    classes = len(chosen) or classes
    if not OPTIONS.quiet:
        print(f"{out}: {len(paths)} {'labelled clouds' if parts else 'meshes'} in {classes} classes")
