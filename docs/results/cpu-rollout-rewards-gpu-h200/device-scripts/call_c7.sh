#!/usr/bin/env bash
# Follow call: $1 = seconds to follow.
set -u
bash .whl/s/monitor4.sh $1
