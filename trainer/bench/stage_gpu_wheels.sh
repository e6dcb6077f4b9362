#!/usr/bin/env bash
# Stage the trainer's Python packages for a GPU machine that has torch (with CUDA) but no package
# registry: download the wheels of trainer/requirements.lock (everything but torch and its CUDA packages,
# which stay the machine's) for that machine's Python, pack them
# into one tar and cut it into parts of at most 56 MiB, one part per folder .whl1/, .whl2/, ...
# (git-ignored through .git/info/exclude), so that each part fits a transfer limit of 64 MiB.
#
#   PYVER=3.12 bash trainer/bench/stage_gpu_wheels.sh        # run in the repo, where pip reaches PyPI
#
# On the GPU machine, `cat .whl[0-9]*/part-* | tar -x -C DIR` gives back the wheels, then
# `python3 -m pip install --no-index --no-deps --target /tmp/site DIR/*.whl` (docs/trainer.md).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
PYVER=${PYVER:-3.12}
PART=${PART:-56m}
DL=.whl-download
mkdir -p "$DL"
platforms=()
for p in manylinux_2_{35,34,31,28,27,24,17,12,5}_x86_64 manylinux2014_x86_64 manylinux2010_x86_64 \
         manylinux1_x86_64 linux_x86_64; do
  platforms+=(--platform "$p")
done
python3 -m pip download --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
  "${platforms[@]}" -d "$DL" -r trainer/requirements.lock
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
for pattern in "/$DL/" '/.whl[0-9]*/'; do
  grep -qxF "$pattern" "$exclude" 2>/dev/null || echo "$pattern" >>"$exclude"
done
rm -rf .whl[0-9]*
tmp=$(mktemp -d)
tar -C "$DL" -cf - $(cd "$DL" && ls *.whl) | split -b "$PART" -d -a 1 - "$tmp/part-"
n=0
for part in "$tmp"/part-*; do
  n=$((n + 1))
  mkdir -p ".whl$n"
  mv "$part" ".whl$n/"
done
rmdir "$tmp"
echo "$(ls "$DL"/*.whl | wc -l) wheels, $(du -sh "$DL" | cut -f1), in $n part(s): $(ls -d .whl[0-9]* | tr '\n' ' ')"
echo "carry one folder per call (.whl1 in the first, ...); the last call runs the benchmark command."
