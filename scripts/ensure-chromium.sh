#!/usr/bin/env bash
# Prints the path of a headless-capable Chromium, installing Debian's `chromium` package when none is
# found and we may (root with apt-get). Used by the report's browser test (test/unit/report-browser.test.ts).
set -euo pipefail
find_browser() {
  for b in "${CHROMIUM_BIN:-}" chromium chromium-browser google-chrome google-chrome-stable; do
    [[ -n "$b" ]] && command -v "$b" >/dev/null 2>&1 && { command -v "$b"; return 0; }
  done
  return 1
}
if find_browser; then exit 0; fi
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "[grpo] installing chromium (apt-get install -y chromium)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >&2 \
    || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >&2; }
  find_browser && exit 0
fi
echo "no Chromium found: install Debian's chromium package (apt-get install -y chromium) or set CHROMIUM_BIN" >&2
exit 1
