#!/usr/bin/env bash
# BFCL v3 `simple` for one model, offline. Run from the repo root (contains trainer/ and .whl/c/).
#   bash .whl/c/bfcl.sh MODEL_DIR OUT_DIR [LIMIT=20] [extra `grpo_trainer bfcl` options, e.g. --prefill-tool-call]
# BFCL side:    python3, PYTHONPATH=trainer:$BSITE:$SITE   (bfcl-eval bundle + trainer wheels; numpy from python3)
# trainer side: python3, PYTHONPATH=trainer:$SITE          (serve/export; torch from python3), via a wrapper
# Overridable: PY (python3), SITE (/tmp/site), BSITE (/tmp/bsite), BUNDLE (.whl/c/bfcl.tar.xz),
#              TRAINER_PYTHON (default: the generated wrapper), CATEGORIES (simple).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 MODEL_DIR OUT_DIR [LIMIT] [extra bfcl options]" >&2; exit 2; }
MODEL=$(realpath "$1"); OUT=$(realpath -m "$2"); LIMIT=${3:-20}; shift $(( $# >= 3 ? 3 : 2 ))
REPO=$(pwd)
PY=${PY:-python3}
SITE=${SITE:-/tmp/site}
BSITE=${BSITE:-/tmp/bsite}
BUNDLE=${BUNDLE:-$REPO/.whl/c/bfcl.tar.xz}
CATEGORIES=${CATEGORIES:-simple}
[ -d "$REPO/trainer/grpo_trainer" ] || { echo "run from the repo root (no trainer/grpo_trainer here)" >&2; exit 2; }
[ -d "$SITE" ] || { echo "missing $SITE (trainer-side packages)" >&2; exit 2; }

if [ ! -e "$BSITE/.done" ]; then
  echo "[bfcl.sh] extracting $BUNDLE -> $BSITE"
  rm -rf "$BSITE.tmp"
  "$PY" - "$BUNDLE" "$BSITE.tmp" <<'EOF'
import sys, tarfile
with tarfile.open(sys.argv[1], "r:xz") as tf:
    tf.extractall(sys.argv[2], filter="tar")
EOF
  rm -rf "$BSITE"; mv "$BSITE.tmp" "$BSITE"; touch "$BSITE/.done"
fi

if [ -z "${TRAINER_PYTHON:-}" ]; then
  TRAINER_PYTHON=$BSITE/.trainer-python
  cat > "$TRAINER_PYTHON" <<EOF
#!/usr/bin/env bash
# trainer side of grpo_trainer bfcl (serve/export): the trainer wheels only, not the bfcl bundle
export PYTHONPATH="$REPO/trainer:$SITE"
exec "$(command -v "$PY")" "\$@"
EOF
  chmod +x "$TRAINER_PYTHON"
fi

# numpy comes from $PY (pandas 3.0.6 in the bundle needs numpy >= 1.26)
"$PY" -c 'import numpy, sys; v = tuple(int(x) for x in numpy.__version__.split(".")[:2]); print("[bfcl.sh] python", sys.version.split()[0], "numpy", numpy.__version__); sys.exit(v < (1, 26))' \
  || { echo "[bfcl.sh] $PY needs numpy >= 1.26" >&2; exit 2; }

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONNOUSERSITE=1
mkdir -p "$OUT"
PYTHONPATH="$REPO/trainer:$BSITE:$SITE" "$PY" -m grpo_trainer bfcl \
  --model "$MODEL" --out "$OUT" --trainer-python "$TRAINER_PYTHON" \
  --categories "$CATEGORIES" --limit "$LIMIT" "$@"
echo "[bfcl.sh] $OUT/bfcl.json"
