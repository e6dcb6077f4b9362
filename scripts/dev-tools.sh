#!/usr/bin/env bash
# The development tools of trainer/requirements-dev.txt (ruff, uv) into the state dir's tools venv,
# reinstalled only when that file changes. npm test and npm run lint call it.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=${GRPO_STATE_DIR:-$PWD/.grpo}
TOOLS="$STATE/tools/venv"
[[ -x "$TOOLS/bin/pip" ]] || python3 -m venv "$TOOLS"
stamp="$TOOLS/.dev-tools.sha256"
want=$(sha256sum trainer/requirements-dev.txt | cut -d' ' -f1)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  "$TOOLS/bin/pip" install --disable-pip-version-check -q -r trainer/requirements-dev.txt
  echo "$want" > "$stamp"
fi
