#!/usr/bin/env bash
# make demo: fit tiny INRs to a few real shapes (or procedural ones), reconstruct them, print
# the quality table, and leave files a person can open in demo-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
NRTOOL=".venv/bin/nrtool"
OUT="demo-out"
PSB="../shared/data/psb"
mkdir -p "$OUT"

# Draping in seconds with the shipped tiny models (examples/models/, rebuilt by `make models`):
# a procedural top on a procedural body walking, next to the nearest-vertex baseline.
MODELS="examples/models"
echo "demo: draping a top on a walking body (shipped tiny models in $MODELS/)"
"$NRTOOL" drape --top "$MODELS/top-z.npy" --pose "$MODELS/walk.npz" --model "$MODELS/drape-top.pt" \
  --body-model "$MODELS/body.npz" --out "$OUT/drape" --baseline --force
echo "demo: draped frames (.obj: body and top), drape.h5 and contact_sheet.png in $OUT/drape/"
echo

# Fitting through the differentiable chain: a synthetic labelled scan of a known clothed body
# (noisy, back missing), then body shape, pose and garment code recovered from it (~40 s).
echo "demo: recovering body, pose and top from a synthetic labelled scan (fit-scan)"
"$NRTOOL" synth scan --model "$MODELS/drape-top.pt" --top "$MODELS/top-z.npy" --pose "$MODELS/walk.npz" --frame 15 \
  --betas 1 --betas -0.8 --betas 0.6 --body-model "$MODELS/body.npz" --out "$OUT/scan.npz"
"$NRTOOL" fit-scan "$OUT/scan.npz" --model "$MODELS/drape-top.pt" --body-model "$MODELS/body.npz" \
  --refine-steps 100 --out "$OUT/fit-scan" --force
echo "demo: fitted body.obj, top.obj, top_refined.obj, fit.h5 and fit.png (scan over the meshes) in $OUT/fit-scan/"
echo

# NetSpace on digits (~1.5 min): a zoo of 96 small networks, the space of them, a walk through it
# and a latent-space optimisation (the README's numbers are the full tiny run: 160 networks, 12 epochs).
echo "demo: NetSpace: a zoo of 96 LeNetLikes on digits, their embedding space, interpolation and LSO"
"$NRTOOL" netspace zoo --out "$OUT/zoo.h5" --count 96 --val-nets 8 --test-nets 8 --quiet
"$NRTOOL" netspace train "$OUT/zoo.h5" --out "$OUT/netspace.pt" --epochs 6 --restart --quiet
"$NRTOOL" netspace interpolate "$OUT/zoo.h5" --model "$OUT/netspace.pt" --out "$OUT/netspace-line.png"
"$NRTOOL" netspace optimize "$OUT/zoo.h5" --model "$OUT/netspace.pt" --out "$OUT/netspace-optimized.pt" --quiet --json \
  | python3 -c "import json, sys; d = json.load(sys.stdin); print(f\"demo: LSO on {d['name']}: target {d['target_accuracy']:.1%}, decoded {d['initial_accuracy']:.1%}, optimised {d['optimized_accuracy']:.1%}\")"
echo "demo: zoo.h5, netspace.pt (+ .png curves), netspace-line.png and netspace-optimized.pt in $OUT/"
echo

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
  "$NRTOOL" synth shapes --out "$OUT/shapes" --classes 4 --per-class 2 --seed 0 --force
  INPUT="$OUT/shapes"
fi

# Meshes are watertight, so --field auto fits signed distance fields.
"$NRTOOL" fit-inr "$INPUT" --out "$OUT/inrs.h5" --preset tiny
"$NRTOOL" info "$OUT/inrs.h5"
"$NRTOOL" reconstruct "$OUT/inrs.h5" --out "$OUT/recon" --metrics --preview "$OUT/preview.png"
echo "demo: reconstructions (.obj, source units) in $OUT/recon/, side-by-side picture in $OUT/preview.png"

# A few-minute inr2vec chain (the whole of pipelines/inr2vec.mk, scaled down): 3 well-separated
# procedural classes, 16 shapes each (4 held out), one augmented copy of each training shape;
# classify and retrieve the held-out shapes from their INRs with inr2vec and ProbeGen, next to PointNet.
echo
echo "demo: inr2vec on procedural shapes (3 classes; a few minutes on 2 cores)"
"$NRTOOL" synth shapes --out "$OUT/inr2vec-shapes" --families ellipsoid,torus,star_prism --per-class 16 \
  --test-fraction 0.25 --seed 0 --force --quiet
make -f pipelines/inr2vec.mk NRTOOL="$NRTOOL" DATA="$OUT/inr2vec-shapes" OUT="$OUT/inr2vec" \
  AUG_COPIES=1 EPOCHS=50 INR2VEC_ARGS="--batch 8" CLF_EPOCHS=60 PN_EPOCHS=20
"$NRTOOL" info "$OUT/inr2vec/emb-inr2vec.h5" --json > /dev/null
python3 - "$OUT/inr2vec" <<'PY'
import json, sys
out = sys.argv[1]
clf = json.load(open(f"{out}/classify.json"))
pts = json.load(open(f"{out}/classify-points.json"))
ret = json.load(open(f"{out}/retrieve.json"))
pg, pg_ret = json.load(open(f"{out}/classify-probegen.json")), json.load(open(f"{out}/retrieve-probegen.json"))
print(f"demo: held-out accuracy  inr2vec {clf['accuracy']:.3f}  |  ProbeGen {pg['accuracy']:.3f}  |  PointNet on reconstructed points {pts['accuracy']:.3f}  (chance 0.333)")
print(f"demo: retrieval of held-out shapes from the training set, mAP@1 / mAP@5: inr2vec {ret['map@1']:.3f} / {ret['map@5']:.3f}  |  ProbeGen {pg_ret['map@1']:.3f} / {pg_ret['map@5']:.3f}")
print(f"demo: pictures in {out}/: tsne.png, retrieve-inr2vec.png, retrieve-probegen.png, pred-inr2vec.confusion.png, inr2vec.png (training curves)")
PY
