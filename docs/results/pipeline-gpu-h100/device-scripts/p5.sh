#!/usr/bin/env bash
# Stage 4b: the `ray` console script pip would have written into the venv; the quickstart again. $1 = run id, $2 = seconds to follow.
set -u; source .whl/s/p_env.sh
E=/tmp/gstate/envs/builtin; find /tmp/site/ray/core /tmp/site/ray/_private -type f \( -name "*.so" -o ! -name "*.*" \) -exec chmod +x {} +
printf '#!%s\nimport sys\nfrom ray.scripts.scripts import main\nsys.exit(main())\n' "$E/bin/python" > $E/bin/ray && chmod +x $E/bin/ray
$E/bin/ray --version
( cd /tmp/repo && setsid nohup node scripts/grpo.js quickstart --config configs/builtin-gpu.yaml --run-id $1 --set trainer.grpo.max_num_steps=20 > $W/qs.out 2>&1 < /dev/null & )
sed -i "s#^R=.*#R=/tmp/gstate/runs/$1#" .whl/s/pf.sh
bash .whl/s/pf.sh $2
