"""Fifteenth session, #15 Change 8 on the GPU: sdpa_packed_varlen (torch's varlen flash attention) against what
packed training runs today (SDPA under transformers' block mask), at SmolLM2-135M's attention shape (9 query
heads, 3 key/value heads, head dim 64, bf16) on packed micro batches like the GPU config's: forward and backward,
the largest differences, and the time of each (median of 20 after 3 untimed)."""
import inspect, json, statistics, sys, time
import torch
from torch.nn.attention import varlen as tv
from grpo_trainer.training import varlen_packed_attention as vpa

print("varlen_attn", inspect.signature(tv.varlen_attn), flush=True)
vpa.register()
print("keywords", sorted(vpa._KERNEL_KEYWORDS), flush=True)


class Stub(torch.nn.Module):
    num_key_value_groups = 3
    is_causal = True


def layout(seed, bins, rows_per_bin):
    g = torch.Generator().manual_seed(seed)
    lens = [[int(x) for x in torch.randint(200, 1400, (rows_per_bin,), generator=g)] for _ in range(bins)]
    width = max(sum(r) for r in lens)
    starts, seg = [], torch.zeros(bins, width, dtype=torch.long)
    for b, rows in enumerate(lens):
        o = 0
        for i, n in enumerate(rows):
            starts.append(b * width + o); seg[b, o:o + n] = i; o += n
        if o < width:
            starts.append(b * width + o); seg[b, o:] = len(rows)
    starts.append(bins * width)
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    mask = ((seg[:, :, None] == seg[:, None, :]) & causal)[:, None]
    useful = sum(n * (n + 1) // 2 for rows in lens for n in rows)
    return width, starts, mask, useful


def timed(fn, n=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(n):
        t = time.perf_counter(); fn(); torch.cuda.synchronize(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)


out = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0), "cases": []}
for bins, rows_per_bin in ((4, 3), (16, 1)):
    width, starts, mask, useful = layout(bins * 10 + rows_per_bin, bins, rows_per_bin)
    dev = "cuda"
    q = torch.randn(bins, 9, width, 64, device=dev, dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(bins, 3, width, 64, device=dev, dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(bins, 3, width, 64, device=dev, dtype=torch.bfloat16, requires_grad=True)
    gout = torch.randn(bins, width, 9, 64, device=dev, dtype=torch.bfloat16)
    mask_d, cu = mask.to(dev), torch.tensor(starts, dtype=torch.int32, device=dev)

    def block():
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask_d, scale=0.125,
                                                                enable_gqa=True).transpose(1, 2)

    def var():
        return vpa.packed_varlen_sdpa(Stub(), q, k, v, mask_d, scaling=0.125, packed_cu_seqlens=cu,
                                      packed_max_length=width)[0]

    res = {}
    for name, fn in (("block_mask_sdpa", block), ("varlen", var)):
        o = fn(); gq, gk, gv = torch.autograd.grad(o, (q, k, v), gout)
        res[name] = (o.float(), gq.float(), gk.float(), gv.float())
    diffs = {part: float((a - b).abs().max()) for part, a, b in
             zip(("out", "dq", "dk", "dv"), res["varlen"], res["block_mask_sdpa"])}
    scale = {part: float(b.abs().max()) for part, b in zip(("out", "dq", "dk", "dv"), res["block_mask_sdpa"])}
    times = {}
    for name, fn in (("block_mask_sdpa", block), ("varlen", var)):
        times[name + "_fwd_ms"] = timed(lambda: fn()) * 1e3
        times[name + "_fwd_bwd_ms"] = timed(lambda: torch.autograd.grad(fn(), (q, k, v), gout)) * 1e3
    flops = 4 * useful * 64 * 9 * 3.5  # forward 4*n^2/2*d*h causal; backward 2.5x forward
    case = {"bins": bins, "rows_per_bin": rows_per_bin, "bin_length": width, "useful_causal_pairs": useful,
            "max_abs_diff": diffs, "max_abs_reference": scale, **{k_: round(t, 3) for k_, t in times.items()},
            "useful_tflops_fwd_bwd": {n: flops / (times[n + "_fwd_bwd_ms"] / 1e3) / 1e12
                                       for n in ("block_mask_sdpa", "varlen")}}
    out["cases"].append(case)
    print(json.dumps(case), flush=True)
json.dump(out, open(sys.argv[1], "w"), indent=1)
