#!/usr/bin/env bash
# The GPU check: one prepared call on a borrowed GPU machine (README, "GPU"). Run it in the
# repository root there, with the pack that `make gpu-pack` wrote (.gpu/, carried along):
#
#     bench/gpu_check.sh              # results to $OUT (at most 8 files), about 9 minutes on an H100/H200
#     bench/gpu_check.sh --dry-run    # the same stages on the CPU here: tiny sizes, seconds each
#
# Stages, most valuable first, each under `timeout` so a slow one cannot eat the next one's time:
#   0 setup     the pack's wheels and this project (--no-deps, nothing fetched)
#   1 train     the shipped AdaIN decoder, then each shipped transformer network, continued for fixed
#               minutes (256 px crops, batch 8, bf16 autocast, channels_last; bench/gpu_train.py)
#   2 pytest    the gpu-marked tests
#   3 bench     nst-fast bench --device cuda at 512 px, batch 1 / 8 / 32 (batch 8 also end to end
#               through the batch runner; Gatys at batch 1 where the pack's VGG reaches relu5_1)
#   4 fidelity  FP16 and FP32 on the GPU against FP32 on the CPU (bench/gpu_fidelity.py)
# Files in $OUT: summary.md (what ran, each stage's time and box, what was skipped), gpu_check.log,
# pytest-gpu.log, adain.tar, transformers.tar, bench.tar, fidelity.md, fidelity.json.
# Environment: OUT (required, except for --dry-run), PACK (default .gpu), PYTHON (default python3;
# .venv/bin/python for --dry-run), BOX_<STAGE> seconds to change a stage's time box.
set -uo pipefail

DRY=0
case "${1:-}" in
  --dry-run) DRY=1 ;;
  "") ;;
  *) echo "usage: bench/gpu_check.sh [--dry-run]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.." || exit 2

PACK=${PACK:-.gpu}
if [[ $DRY == 1 ]]; then
  OUT=${OUT:-out/gpu-check-dry-run}
  PY=${PYTHON:-$( [[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3 )}
else
  : "${OUT:?set OUT to the folder the results go to}"
  PY=${PYTHON:-python3}
fi
for need in vgg16.safetensors train.tar pack.json styles photos; do
  if [[ ! -e $PACK/$need ]]; then
    echo "bench/gpu_check.sh: $PACK/$need not found: run 'make gpu-pack' and carry $PACK along" >&2
    exit 2
  fi
done
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
FILES=(summary.md gpu_check.log pytest-gpu.log adain.tar transformers.tar bench.tar fidelity.md fidelity.json)
(cd "$OUT" && rm -f -- "${FILES[@]}")  # an earlier run's results must not pass for this one's
PACK=$(cd "$PACK" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
LOG=$OUT/gpu_check.log
ROWS=$WORK/rows.md
: >"$LOG"
: >"$ROWS"
NOTES=()

export NST_FAST_VGG=$PACK/vgg16.safetensors NST_FAST_CACHE=$WORK/cache NST_FAST_GRAPH_CACHE=$WORK/graphs \
  NST_FAST_HOME=$WORK/home PYTHONUNBUFFERED=1 MPLBACKEND=Agg

# Sizes: the real check, or the dry run's tiny ones. Time boxes sum to 9 minutes (540 s) for real.
if [[ $DRY == 1 ]]; then
  DEVICE=cpu; CROP=40; BATCH=2; ADAIN_MIN=0.02; TRANSFORMER_MIN=0.01; STYLES=starry_night; SAMPLE=40
  SIZE=64; BATCHES="2"; RUNNER_BATCH=2; RUNNER_IMAGES=2; MIN_SECONDS=0.2; GATYS_STEPS=2; BENCH_BACKENDS="--backend torch"
  BENCH_METHODS="-m transformer"; FIDELITY="--size 64 --limit 2 --styles starry_night --precisions fp16"
  BOX=(setup 5 train 90 pytest 90 bench 90 fidelity 90)  # caps only: a loaded 2-core CPU is slow
else
  DEVICE=cuda; CROP=256; BATCH=8; ADAIN_MIN=2.0; TRANSFORMER_MIN=0.5; STYLES=""; SAMPLE=256
  SIZE=512; BATCHES="1 8 32"; RUNNER_BATCH=8; RUNNER_IMAGES=200; MIN_SECONDS=2; GATYS_STEPS=300; BENCH_BACKENDS=""
  BENCH_METHODS="-m adain -m transformer"; FIDELITY="--size 512 --limit 6"
  BOX=(setup 30 train 270 pytest 45 bench 135 fidelity 60)
fi
box() {  # box STAGE: its time box in seconds (BOX_<STAGE> overrides)
  local i var="BOX_${1^^}"
  if [[ -n ${!var:-} ]]; then echo "${!var}"; return; fi
  for ((i = 0; i < ${#BOX[@]}; i += 2)); do [[ ${BOX[i]} == "$1" ]] && echo "${BOX[i + 1]}"; done
}

stage() {  # stage NAME COMMAND...: COMMAND under NAME's time box; its output to the log; a summary row
  local name=$1 limit t0 rc took status
  shift
  limit=$(box "$name")
  t0=$SECONDS
  echo "=== $name (time box ${limit} s): $*" >>"$LOG"
  # in a bash of its own, so a stage may be a function (exported below); timeout ends its whole group
  timeout -k 10 "$limit" bash -c '"$@"' "$name" "$@" >>"$LOG" 2>&1
  rc=$?
  took=$((SECONDS - t0))
  case $rc in
    0) status=ok ;;
    124 | 137) status="timed out" ;;
    *) status="failed (exit $rc)" ;;
  esac
  echo "=== $name: $status after ${took} s" >>"$LOG"
  echo "| $name | $limit | $took | $status |" >>"$ROWS"
  return $rc
}
skip() {  # skip NAME REASON
  echo "=== $1: skipped: $2" >>"$LOG"
  echo "| $1 | $(box "$1") | 0 | skipped: $2 |" >>"$ROWS"
}

setup() {
  if compgen -G "$PACK/wheels/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps "$PACK"/wheels/*.whl || return
  fi
  "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . || return
  "$PY" -c "import platformdirs, nst_fast.weights as w; v = w.vgg_weights(); print('VGG', v.encoder_id, v.source)"
}

train() {
  "$PY" -m bench.gpu_train --pack "$PACK" --out "$WORK/training" --device "$DEVICE" --crop "$CROP" \
    --batch-size "$BATCH" --adain-minutes "$ADAIN_MIN" --transformer-minutes "$TRANSFORMER_MIN" \
    --sample-size "$SAMPLE" ${STYLES:+--styles "$STYLES"}
}

bench() {
  local b methods gatys rc=0 extra
  # Gatys needs relu5_1: in the pack only when it was made with --last conv5_1
  gatys=$("$PY" -c "import json, sys; print(json.load(open(sys.argv[1]))['vgg_last'] == 'conv5_1')" "$PACK/pack.json")
  for b in $BATCHES; do
    methods=$BENCH_METHODS
    [[ $gatys == True && $b == "${BATCHES%% *}" ]] && methods="$methods -m gatys"
    extra=(--runner-images 0)
    [[ $b == "$RUNNER_BATCH" ]] && extra=(--runner-images "$RUNNER_IMAGES")
    # shellcheck disable=SC2086  # the word lists above are meant to split
    "$PY" -m nst_fast bench --device "$DEVICE" $BENCH_BACKENDS $methods --sizes "$SIZE" --batch-size "$b" \
      --images "$PACK/photos" --min-seconds "$MIN_SECONDS" --gatys-steps "$GATYS_STEPS" "${extra[@]}" \
      --label "gpu-check-b$b" -o "$WORK/bench" || rc=$?
  done
  return $rc
}

pytest_gpu() {  # its output in a file of its own as well
  set -o pipefail
  "$PY" -m pytest -m gpu -q -p no:cacheprovider -rs 2>&1 | tee "$OUT/pytest-gpu.log"
}

fidelity() {
  # shellcheck disable=SC2086
  "$PY" -m bench.gpu_fidelity --photos "$PACK/photos" --device "$DEVICE" $FIDELITY --out "$OUT"
}

export PY PACK WORK OUT DEVICE CROP BATCH ADAIN_MIN TRANSFORMER_MIN STYLES SAMPLE SIZE BATCHES RUNNER_BATCH \
  RUNNER_IMAGES MIN_SECONDS GATYS_STEPS BENCH_BACKENDS BENCH_METHODS FIDELITY
export -f setup train bench pytest_gpu fidelity
START=$SECONDS
if [[ $DRY == 1 ]]; then
  skip setup "dry run: this venv has the project and its wheels"
else
  stage setup setup || NOTES+=("setup failed: the stages after it ran with what the machine had")
fi
stage train train
[[ -f $WORK/training/training.json ]] || NOTES+=("training wrote no training.json: see gpu_check.log")
stage pytest pytest_gpu
stage bench bench
stage fidelity fidelity

# What comes back: at most 8 files ($OUT/a/b/file at the deepest).
kept() {  # kept RUN...: what comes back of each run folder: weights, log, loss plot, its last sample sheet
  local run
  for run in "$@"; do
    (cd "$WORK/training" && ls -d "$run"/*.safetensors "$run"/log.jsonl "$run"/losses.png 2>/dev/null \
      && ls -d "$run"/samples/* 2>/dev/null | tail -n 1)
  done
}
if [[ -d $WORK/training ]]; then
  runs=$(cd "$WORK/training" && ls -d -- */ 2>/dev/null | tr -d /)
  for group in adain transformers; do
    # shellcheck disable=SC2046,SC2086  # one word per run name, per file
    if [[ $group == adain ]]; then set -- $(grep -x adain <<<"$runs"); else set -- $(grep -vx adain <<<"$runs"); fi
    [[ $# -gt 0 ]] && tar -C "$WORK/training" -cf "$OUT/$group.tar" training.json $(kept "$@") 2>>"$LOG"
  done
fi
[[ -d $WORK/bench ]] && tar -C "$WORK" -cf "$OUT/bench.tar" bench 2>>"$LOG"

{
  echo "# GPU check $(date -u '+%Y-%m-%d %H:%M UTC')$([[ $DRY == 1 ]] && echo ' (dry run on the CPU)')"
  echo
  echo "Commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); $("$PY" -c 'import torch; print("torch", torch.__version__, "on", torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")' 2>/dev/null)."
  echo "Pack: $("$PY" -c 'import json, sys; p = json.load(open(sys.argv[1])); print(p["encoder_id"], "VGG to", p["vgg_last"], "|", p["train"]["content"], "photos,", p["train"]["style"], "paintings")' "$PACK/pack.json")."
  echo "Sizes: training crops ${CROP} px, batch ${BATCH}, AdaIN ${ADAIN_MIN} min, each transformer ${TRANSFORMER_MIN} min;"
  echo "bench ${SIZE} px at batch ${BATCHES// / \/ } (runner ${RUNNER_IMAGES} files at batch ${RUNNER_BATCH}); fidelity: ${FIDELITY}."
  echo
  echo "| stage | time box (s) | took (s) | status |"
  echo "|---|---|---|---|"
  cat "$ROWS"
  echo
  echo "Total: $((SECONDS - START)) s."
  for note in "${NOTES[@]}"; do echo "- $note"; done
  if [[ -f $WORK/training/training.json ]]; then
    echo
    echo "## Training"
    "$PY" - "$WORK/training/training.json" <<'EOF'
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
print("| network | steps | s | images/s | loss first 10 | loss last 10 | note |\n|---|---|---|---|---|---|---|")
for name, r in runs.items():
    if "error" in r:
        print(f"| {name} | - | {r['seconds']} | - | - | - | {r['error']} |")
    else:
        note = f"inversion {r['inversion_db_last']:.1f} dB" if "inversion_db_last" in r else ""
        print(f"| {name} | {r['steps']} | {r['seconds']} | {r['images_per_s_median']} | "
              f"{r['first_10']['loss']:.4g} | {r['last_10']['loss']:.4g} | {note} |")
EOF
  fi
  for md in "$WORK"/bench/*.md; do
    [[ -f $md ]] || continue
    echo
    echo "## Bench: $(basename "$md" .md)"
    echo
    cat "$md"
  done
  if [[ -f $OUT/fidelity.md ]]; then
    echo
    echo "## FP16 fidelity"
    echo
    cat "$OUT/fidelity.md"
  fi
  echo
  echo "Files: $(cd "$OUT" && ls | grep -vx 'summary\.md\(\.part\)\?' | tr '\n' ' ')summary.md"
} >"$OUT/summary.md.part" && mv "$OUT/summary.md.part" "$OUT/summary.md"
echo "$OUT/summary.md"
grep -q "timed out\|failed" "$ROWS" && exit 1
exit 0
