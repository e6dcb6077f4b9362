"""Which logits processors each sampling path builds, on any model directory (argv[1]): the evaluation runner's
`generate(..., top_p=None, top_k=None)` and TRL's explicit GenerationConfig with our `top_k=None`."""
import sys

import torch
from transformers import AutoModelForCausalLM, GenerationConfig

model = AutoModelForCausalLM.from_pretrained(sys.argv[1])
build = model._get_logits_processor


def spy(*args, **kwargs):
    processors = build(*args, **kwargs)
    print("  ", [type(p).__name__ + (f"(top_k={p.top_k})" if hasattr(p, "top_k") else "") for p in processors])
    return processors


model._get_logits_processor = spy
ids = torch.tensor([[1, 2, 3]])
print("evaluation runner (rollout/episodes.py):")
model.generate(ids, do_sample=True, temperature=1.0, top_p=None, top_k=None, max_new_tokens=2, pad_token_id=2)
print("TRL's rollouts (GRPOConfig top_k=None, as training/grpo.py passes policy.generation.top_k: null):")
trl_config = GenerationConfig(max_new_tokens=2, do_sample=True, pad_token_id=2, temperature=1.0, top_p=1.0, top_k=None,
                              min_p=None, repetition_penalty=1.0)
model.generate(ids, generation_config=trl_config)
