#!/usr/bin/env bash
# make demo: fit tiny INRs to a few real shapes (or procedural ones), reconstruct them, print
# the quality table, and leave files a person can open in demo-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
NRTOOL=".venv/bin/nrtool"
OUT="demo-out"
PSB="../shared/data/psb"
mkdir -p "$OUT"

if [ -d "$PSB" ]; then
  # One test mesh from each of 8 classes of the Princeton Segmentation Benchmark
  # (absolute paths: a list file's relative entries are relative to the list itself).
  : > "$OUT/shapes.txt"
  for class in airplane ant chair cup fish human octopus table; do
    ls "$PSB/$class/test/"*.ply | head -1 | xargs realpath >> "$OUT/shapes.txt"
  done
  INPUT="$OUT/shapes.txt"
  echo "demo: 8 real meshes from $PSB"
else
  echo "demo: $PSB not found, using procedural shapes"
  "$NRTOOL" synth shapes --out "$OUT/shapes" --classes 4 --per-class 2 --seed 0
  INPUT="$OUT/shapes"
fi

# Meshes are watertight, so --field auto fits signed distance fields.
"$NRTOOL" fit-inr "$INPUT" --out "$OUT/inrs.h5" --preset tiny
"$NRTOOL" info "$OUT/inrs.h5"
"$NRTOOL" reconstruct "$OUT/inrs.h5" --out "$OUT/recon" --metrics --preview "$OUT/preview.png"
echo "demo: reconstructions (.obj, source units) in $OUT/recon/, side-by-side picture in $OUT/preview.png"
