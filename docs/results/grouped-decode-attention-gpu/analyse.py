"""Change 7 (grouped decoding attention) from the raw files here (README.md): the decoding-step benchmark with
SDPA's repeated heads and with the grouped heads (gen-*.json), and the GRPO step benchmark with the switch off
and on at 64 and 256 rollouts a step (step-grouped-*.json, step256-grouped-*.json). Run it in this directory."""
import json
from pathlib import Path


def load(name: str) -> dict | None:
    path = Path(name)
    return json.loads(path.read_text()) if path.exists() else None


gens = {att: load(f"gen-{att}.json") for att in ("sdpa", "grouped")}
for att, gen in gens.items():
    if gen is None:
        print(f"gen-{att}.json: missing")
        continue
    c = gen["ceilings"] or {}
    print(f"decoding, {att}: {gen['gpu']}, torch {gen['torch']}, transformers {gen['transformers']}, "
          f"static cache {gen.get('static_cache_len')} tokens, prompts {gen['prompt_len']} + {gen['new_tokens']} new; "
          f"copy {c.get('copy_bandwidth_gb_s')} GB/s, bf16 {c.get('matmul_tflops')} TFLOP/s; compile {gen.get('compile_s')}")
    for r in gen["runs"]:
        print(f"  batch {r['batch']:>4}: {r['decode_step_ms']:7.2f} ms/step, {r['decode_tokens_per_s']:>9,.0f} tok/s, "
              f"roofline {r.get('roofline_step_ms')} ms/step ({r.get('roofline_tokens_per_s', 0):,.0f} tok/s), "
              f"fraction {r.get('roofline_fraction', 0):.2%}; decoded {r['decoded_tokens']}")
    prof = gen.get("profile") or {}
    if "kernel_ms_per_step" in prof:
        print(f"  profile at batch {prof['batch']}: GPU kernels {prof['kernel_ms_per_step']} ms per decoding step "
              f"(busy share {prof.get('gpu_busy_share')}), {prof['kernel_launches_per_step']} kernels per step")
        for k in prof["top_kernels"][:6]:
            print(f"    {k['ms_per_step']:7.3f} ms x{k['calls_per_step']:>5}  {k['name'][:90]}")
    elif prof:
        print(f"  profile: {prof}")
if all(gens.values()):
    for before, after in zip(gens["sdpa"]["runs"], gens["grouped"]["runs"], strict=True):
        print(f"batch {before['batch']}: {before['decode_step_ms']} -> {after['decode_step_ms']} ms per decoding step, "
              f"{before['decode_step_ms'] / after['decode_step_ms']:.2f}x")

for name in ("step-grouped-false", "step-grouped-true", "step256-grouped-false", "step256-grouped-true"):
    step = load(f"{name}.json")
    if step is None or "compiled" not in step.get("summary", {}):
        print(f"{name}.json: missing or no summary")
        continue
    s = step["summary"]["compiled"]
    rollouts = s.get("rollouts_per_step") or s["generated_tokens"] // 256
    print(f"{name} ({rollouts} rollouts): {step['gpu']}: step {s['step_s']:.2f} s (generation {s['generation_s']:.2f}, training "
          f"{s['training_s']:.2f}, other {s['other_s']:.2f}), {s['generated_tokens_per_s']:,.0f} generated tok/s = "
          f"{s['roofline_fraction']:.1%} of the decode roofline, peak "
          f"{s['peak_memory']['timed_steps_max_allocated_mb']:,.0f} MiB")
