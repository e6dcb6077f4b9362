"""How the H runs' files were made (run here, before the device calls; inputs as in the earlier GPU studies).

Half A of the 552 training tasks (stratified by category, seed 42): its traces warm-start the H model.
Half B: the tasks GRPO trains on in the H runs, none of which the warm start saw.
"""
import collections
import json
import random

tasks = [json.loads(line) for line in open("wpdata/train.jsonl")]
by_category = collections.defaultdict(list)
for task in tasks:
    by_category[task["category"]].append(task["id"])
rng = random.Random(42)
half_a: set[int] = set()
for _, ids in sorted(by_category.items()):
    ids = sorted(ids)
    rng.shuffle(ids)
    half_a |= set(ids[: len(ids) // 2])
with open("wpdata/train-half-b.jsonl", "w") as out:
    out.writelines(line for line in open("wpdata/train.jsonl") if json.loads(line)["id"] not in half_a)
with open("traces-gpu-half-a.jsonl", "w") as out:
    out.writelines(line for line in open("traces-gpu.jsonl") if json.loads(line)["task_id"] in half_a)
