"""Change 8 (varlen attention for packed training) and Change 7 on the warmed model's real tool turns, from the raw
files here (README.md): varlen-check.json (the attention call alone), bench-A.json (the GRPO step benchmark,
grouped decoding attention on, each micro batch's training replayed four ways) and bench-B.json (the same step
with grouped decoding attention off, no replays). Run it in this directory."""
import json
from pathlib import Path

check = json.loads(Path("varlen-check.json").read_text())
print(f"attention alone: {check['gpu']}, torch {check['torch']}; 9 query heads over 3 key/value heads, head dim 64, bf16")
for c in check["cases"]:
    print(f"  {c['bins']} packed sequences of {c['bin_length']} tokens, {c['rows_per_bin']} row(s) each: forward + backward "
          f"{c['block_mask_sdpa_fwd_bwd_ms']:.3f} ms under the block mask, {c['varlen_fwd_bwd_ms']:.3f} ms varlen "
          f"({c['block_mask_sdpa_fwd_bwd_ms'] / c['varlen_fwd_bwd_ms']:.2f}x); forward {c['block_mask_sdpa_fwd_ms']:.3f} -> "
          f"{c['varlen_fwd_ms']:.3f} ms; largest difference {c['max_abs_diff']} (values up to {c['max_abs_reference']})")

steps = {}
for name in ("A", "B"):
    b = json.loads(Path(f"bench-{name}.json").read_text())
    run, s = b["runs"]["compiled"], b["summary"]["compiled"]
    steps[name] = s
    print(f"\nbench-{name}: {b['gpu']}, torch {b['torch']}, transformers {b['transformers']}, trl {b['trl']}; ceilings "
          f"{b['ceilings']['copy_bandwidth_gb_s']} GB/s copy, {b['ceilings']['matmul_tflops']} TFLOP/s bf16; overrides "
          f"{[o for o in run['overrides'] if 'grouped' in o] or 'none beyond the benchmark'}")
    print(f"  mean of timed steps {s['timed_steps'] if 'timed_steps' in s else ''}: step {s['step_s']:.2f} s, generation "
          f"{s['generation_s']:.2f}, training {s['training_s']:.2f}, other {s['other_s']:.2f}; {s['generated_tokens']:,.0f} "
          f"tokens generated a step at {s['generated_tokens_per_s']:,.0f} tok/s = {s['roofline_fraction']:.1%} of the decode "
          f"roofline ({s['roofline_tokens_per_s']:,.0f}); peak {s['peak_memory']['timed_steps_max_allocated_mb']:,.0f} MiB; "
          f"warm-up step {s['warmup_step_s']} s")
    for st in run["steps"]:
        line = (f"  step {st['step']}: {st['step_s']:.2f} s, generation {st['generation_s']:.2f} s, "
                f"{st['trained_tokens']:,} trained tokens")
        if st.get("variants"):
            line += "; replays " + ", ".join(f"{k} {v['seconds']:.2f} s" for k, v in st["variants"].items())
        print(line)
    for vname, v in s.get("training_variants", {}).items():
        print(f"  training {vname:24} {v['seconds']:.3f} s a step, MFU {v['mfu_training']:.1%}, forward tokens "
              f"{v['forward_tokens']:,.0f}, log-probs against padded mean {v['logp_mean_abs_diff']} max {v['logp_max_abs_diff']}")
    if run.get("failed_training_variants"):
        print(f"  failed: {run['failed_training_variants']}")

v = steps["A"]["training_variants"]
print(f"\nChange 8: packed {v['packed']['seconds']:.3f} -> packed+varlen {v['packed+varlen']['seconds']:.3f} s "
      f"({v['packed']['seconds'] / v['packed+varlen']['seconds']:.2f}x); padded -> packed+varlen "
      f"{v['padded']['seconds'] / v['packed+varlen']['seconds']:.2f}x; compiled on top "
      f"{v['packed+varlen']['seconds'] / v['packed+varlen+compiled']['seconds']:.2f}x, "
      f"padded -> packed+varlen+compiled {v['padded']['seconds'] / v['packed+varlen+compiled']['seconds']:.2f}x")
a, b = steps["A"], steps["B"]
print(f"Change 7 on real tool turns: generation {b['generation_s']:.2f} -> {a['generation_s']:.2f} s a step "
      f"({b['generation_s'] / a['generation_s']:.2f}x), {b['generated_tokens_per_s']:,.0f} -> {a['generated_tokens_per_s']:,.0f} "
      f"tok/s ({a['generated_tokens_per_s'] / b['generated_tokens_per_s']:.2f}x), {b['roofline_fraction']:.1%} -> "
      f"{a['roofline_fraction']:.1%} of the decode roofline; step {b['step_s']:.2f} -> {a['step_s']:.2f} s")
