"""Inputs for ``bench/gpu_check.sh``, made on a machine with the full environment (Open3D).

A GPU machine may have PyTorch but no Open3D, PyTorch3D or network: ground truth and procedural
garments are made here and carried there.

    .venv/bin/python bench/gpu_data.py OUT      (or: make gpu-data)

writes ``OUT/psb24-samples.h5`` (`nrtool sample`, tiny preset: 4 PSB classes x 4 train + 2 test
meshes) and ``OUT/garments/`` (24 training and 4 held-out procedural tops, as
``bench/garment_bench.py`` makes them). About 20 s and 18 MB.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PSB = REPO.parent / "shared" / "data" / "psb"
CLASSES = ("airplane", "chair", "cup", "fish")
sys.path.insert(0, str(REPO / "bench"))


def psb_list(out: Path) -> Path:
    """A .txt list of 4 train + 2 test meshes of each class in CLASSES (the CLASS/split/FILE layout gives labels)."""
    if not PSB.is_dir():
        raise SystemExit(f"gpu_data: {PSB} not found (the shared PSB meshes are needed)")
    files = []
    for name in CLASSES:
        files += sorted((PSB / name / "train").glob("*.ply"))[:4] + sorted((PSB / name / "test").glob("*.ply"))[:2]
    listing = out / "psb24.txt"
    listing.write_text("".join(f"{f}\n" for f in files))
    return listing


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="Folder to write (made if missing; existing parts are kept).")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    samples = args.out / "psb24-samples.h5"
    if not samples.exists():
        nrtool = Path(sys.executable).parent / "nrtool"
        subprocess.run([str(nrtool), "--quiet", "sample", str(psb_list(args.out)), "--out", str(samples),
                        "--preset", "tiny"], check=True)
    import garment_bench

    garment_bench.make_data(args.out / "garments", tops=24, held_out=4)
    print(f"GPU inputs ready in {args.out}: psb24-samples.h5, garments/")


if __name__ == "__main__":
    main()
