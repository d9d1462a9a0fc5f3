#!/usr/bin/env bash
# CUDA checks for a lent GPU machine that has PyTorch but no network, Open3D or PyTorch3D.
#
#   bench/gpu_check.sh DATA RESULTS [WORK]
#
# DATA is made beforehand on a machine with the full environment (`make gpu-data`, bench/gpu_data.py):
#   DATA/psb24-samples.h5   ground truth of 24 PSB shapes (`nrtool sample`, tiny preset)
#   DATA/garments/          procedural tops (train/ and held/, as bench/garment_bench.py makes them)
# and trimesh travels as a wheel (garment .obj files are read with it).
#
# Steps, each reported [ok] or [FAILED] with its seconds, and none stopping the others:
#   1. the inr2vec chain on CUDA: fit-inr from the samples artifact, train inr2vec, encode,
#      train classifier, classify, train pointnet, classify-points;
#   2. the fitter's speed-ups (bench/run.py --only speedups: TF32, bf16, torch.compile, --batch auto,
#      each on and off, INR/s and fit quality side by side);
#   3. the garment benchmark on CUDA: every preset trained for a budget
#      (GARMENT_SECONDS, one per preset), held-out Chamfer, decode + MeshUDF vs plain marching
#      cubes at 128^3 and 256^3 for every trained model.
# Only small result files go to RESULTS (log, JSON, the fitted INRs); the rest stays in WORK.
# DEVICE=cpu runs the same script on a CPU (to try it before spending GPU time).
set -u -o pipefail

DATA=${1:?DATA folder}
RESULTS=${2:?RESULTS folder}
WORK=${3:-$(mktemp -d)}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
GARMENT_PRESETS=${GARMENT_PRESETS:-tiny,small,paper}
GARMENT_SECONDS=${GARMENT_SECONDS:-30,90,180}
INR2VEC_EPOCHS=${INR2VEC_EPOCHS:-40}
mkdir -p "$RESULTS" "$WORK"
export PYTHONUNBUFFERED=1

nr() { "$PY" -m nrtool --quiet "$@"; }

step() {
    local name=$1 started rc
    shift
    started=$(date +%s.%N)
    "$@"
    rc=$?
    local took
    took=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $started }")
    if [ "$rc" -eq 0 ]; then echo "[ok] $name (${took} s)"; else echo "[FAILED rc=$rc] $name (${took} s)"; fi
}

"$PY" - <<'EOF'
import platform, torch
print(f"python {platform.python_version()}, torch {torch.__version__}, cuda available {torch.cuda.is_available()}"
      + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))
EOF

S=$DATA/psb24-samples.h5
step "fit-inr (tiny, 24 PSB shapes)" nr fit-inr "$S" --out "$WORK/inrs.h5" --preset tiny --device "$DEVICE" --json
cp "$WORK/inrs.h5" "$RESULTS/inrs-$DEVICE.h5" 2>/dev/null
step "train inr2vec ($INR2VEC_EPOCHS epochs)" nr train inr2vec "$WORK/inrs.h5" --out "$WORK/inr2vec.pt" --preset tiny \
    --epochs "$INR2VEC_EPOCHS" --device "$DEVICE"
step "encode" nr encode "$WORK/inrs.h5" --model "$WORK/inr2vec.pt" --out "$WORK/emb.h5" --device "$DEVICE"
step "train classifier" nr train classifier "$WORK/emb.h5" --out "$WORK/clf.pt" --preset tiny --epochs 100 --device "$DEVICE"
step "classify" nr classify "$WORK/emb.h5" --model "$WORK/clf.pt" --out "$WORK/pred.h5" --split test --json
step "train pointnet (5 epochs)" nr train pointnet "$WORK/inrs.h5" --out "$WORK/pointnet.pt" --preset tiny --epochs 5 \
    --device "$DEVICE"
step "classify-points" nr classify-points "$WORK/inrs.h5" --model "$WORK/pointnet.pt" --out "$WORK/pred-points.h5" \
    --split test --device "$DEVICE" --json

step "fitting speed-ups (tiny, small, paper; each on and off)" "$PY" bench/run.py --only speedups --device "$DEVICE" \
    --samples "$S" --json "$RESULTS/speedups-$DEVICE.json"

step "garment benchmark ($GARMENT_PRESETS, $GARMENT_SECONDS s)" "$PY" bench/garment_bench.py --device "$DEVICE" \
    --data "$DATA/garments" --presets "$GARMENT_PRESETS" --train-seconds "$GARMENT_SECONDS" \
    --json "$RESULTS/garment-$DEVICE.json"
