"""The training switches for a real run, from a --training-variants benchmark: the fastest variant whose
completion log-probs stay within 0.05 (mean absolute, bf16) of the padded path's; nothing when the
benchmark has no result."""
import json
import sys

try:
    variants = json.load(open(sys.argv[1]))["summary"]["compiled"]["training_variants"]
except (OSError, KeyError, ValueError):
    sys.exit(0)
ok = [(v["seconds"], name) for name, v in variants.items() if v["logp_mean_abs_diff"] <= 0.05 and v["seconds"]]
best = min(ok)[1] if ok else "padded"
print(f"policy.packed_sequences={str('packed' in best).lower()} "
      f"policy.compiled_training_forward={str('compiled' in best).lower()}")
