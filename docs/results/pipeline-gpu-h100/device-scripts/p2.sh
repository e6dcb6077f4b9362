#!/usr/bin/env bash
# Stage 2: Ray (and its few requirements) into /tmp/site; node 20 when the machine has none that is new enough.
set -u; source .whl/s/p_env.sh; T0=$(date +%s)
mkdir -p /tmp/site && tar xJf .whl/p2/raysite.tar.xz -C /tmp/site
v=$(node --version 2>/dev/null | sed 's/^v//'); echo "machine node: ${v:-none}"
if [ -z "$v" ] || [ "$(printf '%s\n20.19.0\n' "$v" | sort -V | head -1)" != "20.19.0" ]; then
  mkdir -p /tmp/nodebin && xz -dc .whl/p2/node.xz > /tmp/nodebin/node && chmod +x /tmp/nodebin/node && echo "carried node $(/tmp/nodebin/node --version)"
fi
echo "stage 2 done in $(( $(date +%s) - T0 ))s"
