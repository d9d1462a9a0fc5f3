#!/usr/bin/env bash
# make models: rebuild the small pretrained `tiny` models shipped in examples/models/ (about
# 5 minutes on 2 CPU cores), so that a newcomer's first `nrtool drape` takes seconds. Everything
# is procedural and seeded: the body (our own SMPL-format stand-in, not SMPL), garments, motion.
#
#   body.npz       `nrtool synth body --resolution 0.03`
#   top.pt         garment network (tiny) trained on 16 procedural tops
#   drape-top.pt   draping network (tiny) trained by physics alone on 8 of them and the
#                  built-in motions; embeds its skinning field and the garment network
#   top-z.npy      the code of a held-out procedural top
#   walk.npz       a 2 s procedural walk (AMASS format, Z-up)
set -euo pipefail
cd "$(dirname "$0")/.."
NRTOOL="${NRTOOL:-.venv/bin/nrtool}"
OUT="examples/models"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

"$NRTOOL" synth body --out "$OUT/body.npz" --resolution 0.03
"$NRTOOL" synth garments --body "$OUT/body.npz" --out "$WORK/train" --tops 16 --bottoms 2 --resolution 0.03 \
  --seed 0 --no-preview --quiet
"$NRTOOL" synth garments --body "$OUT/body.npz" --out "$WORK/held" --tops 2 --bottoms 1 --resolution 0.03 \
  --seed 11 --no-preview --quiet
"$NRTOOL" train garment "$WORK/train" --category top --out "$WORK/top.pt" --preset tiny --epochs 40 \
  --val 2 --val-every 1000 --device cpu --quiet
cp "$WORK/top.pt" "$OUT/top.pt"
"$NRTOOL" garment encode "$WORK"/train/tops/top_000[0-7].obj --model "$OUT/top.pt" --out "$WORK/codes.h5" \
  --device cpu --quiet
"$NRTOOL" train drape --garment-model "$OUT/top.pt" --codes "$WORK/codes.h5" --body-model "$OUT/body.npz" \
  --poses procedural --skinning "$WORK/skin.pt" --out "$WORK/drape-top.pt" --preset tiny \
  --garment-resolution 48 --device cpu
cp "$WORK/drape-top.pt" "$OUT/drape-top.pt"
"$NRTOOL" garment encode "$WORK/held/tops/top_0000.obj" --model "$OUT/top.pt" --npy "$OUT/top-z.npy" \
  --device cpu --quiet
"$NRTOOL" synth poses --out "$OUT/walk.npz" --motion walk --seconds 2 --fps 30 --seed 3 --force
ls -l "$OUT"
