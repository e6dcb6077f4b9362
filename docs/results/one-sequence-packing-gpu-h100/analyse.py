"""Change 9 (one sequence per micro batch under varlen attention), the step's training at 32 rows a micro batch, and
the 256-rollout GRPO run from the warm start, from the raw files here (README.md). Run it in this directory.

The benchmark's JSON here predates its real-token accounting (bench_grpo_step_gpu.py counts MFU on every non-padding
token since this run): its `mfu_training` counts TRL's `num_tokens`, which leaves out the tool results. The real
tokens are recovered from the raw files: in bench A, the one-sequence variant's forward tokens are exactly them (it
runs no padding); in bench C, `train/packed_tokens` of the metrics (no replays there, so only the step's own forwards).
"""
import json
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[3] / "trainer" / "bench"), str(Path(__file__).resolve().parent.parent)]
from bench_grpo_step_gpu import training_flops  # noqa: E402
from headroom_runs import paired_change, solved_by_task  # noqa: E402

ROLLOUTS = 64


def load(name: str) -> tuple[dict, dict, dict, dict]:
    b = json.loads(Path(f"bench-{name}.json").read_text())
    mode = next(iter(b["runs"]))
    metrics = {r["step"]: r for r in map(json.loads, Path(f"bench-{name}-metrics.jsonl").read_text().splitlines())
               if r.get("kind") == "train"}
    return b, b["runs"][mode], b["runs"][mode]["summary"], metrics


def mfu(tokens: float, seconds: float, run: dict, peak_tflops: float) -> float:
    return training_flops(tokens, run["model"], tokens / ROLLOUTS) / seconds / (peak_tflops * 1e12)


for name in ("A", "C"):
    b, run, s, metrics = load(name)
    peak = b["ceilings"]["matmul_tflops"]
    print(f"bench-{name}: {b['gpu']}, torch {b['torch']}, transformers {b['transformers']}, trl {b['trl']}; ceilings "
          f"{b['ceilings']['copy_bandwidth_gb_s']} GB/s copy, {peak} TFLOP/s bf16; micro batch "
          f"{run['per_device_train_batch_size']} x {run['gradient_accumulation_steps']}; overrides "
          f"{[o for o in run['overrides'] if 'micro' in o or 'compiled_training' in o] or 'none beyond the benchmark'}")
    print(f"  mean of timed steps {s['timed_steps']}: step {s['mean']['step_s']:.2f} s, generation "
          f"{s['mean']['generation_s']:.2f}, training {s['mean']['training_s']:.3f}, other {s['mean']['other_s']:.2f}; "
          f"peak {run['peak_memory']['timed_steps_max_allocated_mb']:,.0f} MiB; warm-up step "
          f"{s['warmup_step_s']} s")
    real_by_step, rows = {}, s["per_step"]
    for r in rows:
        variants = r["training_variants"]
        real = variants["packed+varlen"]["forward_tokens"] if variants else metrics[r["step"]]["train/packed_tokens"]
        real_by_step[r["step"]] = real
        print(f"  step {r['step']}: real tokens {real:,} (TRL's num_tokens {r['trained_tokens']:,.0f}, "
              f"{real / r['trained_tokens']:.2f}x); the step's training {r['training_s']:.3f} s = MFU "
              f"{mfu(real, r['training_s'], run, peak):.1%} on real tokens ({r['mfu_training']:.1%} as the JSON counts)")
        for v, x in variants.items():
            print(f"    {v:24} {x['seconds']:.3f} s, forward tokens {x['forward_tokens']:>7,}, MFU "
                  f"{mfu(real, x['seconds'], run, peak):.1%} on real tokens")
    if rows and rows[0]["training_variants"]:
        print("  means of the timed steps, per variant:")
        for v in rows[0]["training_variants"]:
            secs = sum(r["training_variants"][v]["seconds"] for r in rows) / len(rows)
            fwd = sum(r["training_variants"][v]["forward_tokens"] for r in rows) / len(rows)
            m = sum(mfu(real_by_step[r["step"]], r["training_variants"][v]["seconds"], run, peak) for r in rows) / len(rows)
            print(f"    {v:24} {secs:.3f} s a step, forward tokens {fwd:,.0f}, MFU {m:.1%} on real tokens, log-probs "
                  f"against padded mean {s['mean']['training_variants'][v]['logp_mean_abs_diff']} max "
                  f"{s['mean']['training_variants'][v]['logp_max_abs_diff']}")
    else:
        m = sum(mfu(real_by_step[r["step"]], r["training_s"], run, peak) for r in rows) / len(rows)
        real = sum(real_by_step.values()) / len(rows)
        print(f"  the step's whole training part (loss, backward, clipping, optimizer): {s['mean']['training_s']:.3f} s "
              f"a step for {real:,.0f} real tokens, MFU {m:.1%} on real tokens")

print("\nR256: GRPO from the warm start, configs/builtin-gpu.yaml with 32 tasks x 8 rollouts a step")
steps = [r for r in map(json.loads, Path("metrics-R256.jsonl").read_text().splitlines()) if r.get("kind") == "train"]
for lo in range(0, len(steps), 10):
    chunk = steps[lo:lo + 10]
    mean = {k: sum(r[k] for r in chunk) / len(chunk)
            for k in ("train/reward", "train/rewards/task_solved/mean", "train/frac_reward_zero_std",
                      "timing/train/total_step_time", "train/packed_tokens", "train/trained_tokens")}
    print(f"  steps {chunk[0]['step']}-{chunk[-1]['step']}: shaped reward {mean['train/reward']:.3f}, solved "
          f"{mean['train/rewards/task_solved/mean']:.3f}, groups without signal {mean['train/frac_reward_zero_std']:.2f}, "
          f"{mean['timing/train/total_step_time']:.1f} s a step, packed tokens {mean['train/packed_tokens']:,.0f} "
          f"(TRL's num_tokens {mean['train/trained_tokens']:,.0f}), skipped updates "
          f"{sum(r.get('train/skipped_updates') or 0 for r in chunk)}, largest grad norm "
          f"{max(r['train/grad_norm'] for r in chunk):.3f}")
warm, after = solved_by_task("eval-warm-F.json"), solved_by_task("eval-R256-step_10.json")
mean, lo, hi, gained, lost = paired_change(warm, after)
print(f"  greedy on the {len(warm)} validation tasks: warm start {sum(warm.values()) / len(warm):.4f}, step 10 "
      f"{sum(after.values()) / len(after):.4f}; gained {gained}, lost {lost}; paired change {mean:+.3f} "
      f"[{lo:+.3f}, {hi:+.3f}]")
