#!/usr/bin/env bash
# npm run lint: ESLint (typescript-eslint, workflow sandbox rules) over the TypeScript, ruff over the
# Python. ruff comes from trainer/requirements-dev.txt into the state dir's tools venv (dev tools
# stay out of the trainer's runtime environment).
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=${GRPO_STATE_DIR:-$PWD/.grpo}
TOOLS="$STATE/tools/venv"
[[ -x "$TOOLS/bin/pip" ]] || python3 -m venv "$TOOLS"
want=$(grep -E '^ruff==' trainer/requirements-dev.txt)
have=$("$TOOLS/bin/ruff" --version 2>/dev/null | awk '{print "ruff==" $2}' || true)
[[ "$have" == "$want" ]] || "$TOOLS/bin/pip" install --disable-pip-version-check -q "$want"
npx eslint .
"$TOOLS/bin/ruff" check trainer test/doubles test/probes
