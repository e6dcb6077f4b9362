#!/usr/bin/env bash
# npm run lint: ESLint (typescript-eslint, workflow sandbox rules) over the TypeScript, ruff over the
# Python. ruff comes from trainer/requirements-dev.lock into the state dir's tools venv
# (scripts/dev-tools.sh; dev tools stay out of the trainer's runtime environment).
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=${GRPO_STATE_DIR:-$PWD/.grpo}
TOOLS="$STATE/tools/venv"
bash scripts/dev-tools.sh
npx eslint .
"$TOOLS/bin/ruff" check trainer test/doubles test/probes
