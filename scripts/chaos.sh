#!/usr/bin/env bash
# npm run chaos [-- --repeat 3] [--only name,...]: the chaos suite (real faults against real runs).
# Installs what it needs like `npm test`, then runs test/chaos/run.ts. Takes minutes per scenario.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
node scripts/grpo.js setup >/dev/null
exec node --import tsx test/chaos/run.ts "$@"
