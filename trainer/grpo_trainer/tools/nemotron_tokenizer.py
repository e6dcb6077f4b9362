"""The NeMo Gym tutorial's two edits of Nemotron Nano v2's chat template, before RL training (stdlib only).

The tutorial edits the cached `tokenizer_config.json` of the downloaded model ("must be modified for
RL training"): thinking off by default (`enable_thinking` true -> false), and the template block that
rewrites the conversation when its last message is the assistant's (`messages[-1]['role'] ==
'assistant'`) removed. The Hub cache keeps files as symlinks into blobs/, so the edited file replaces
the symlink instead of changing the shared blob. Idempotent: a second run changes nothing.

    python nemotron_tokenizer.py --hf-home DIR --model nvidia/NVIDIA-Nemotron-Nano-9B-v2
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

THINKING = re.compile(r"(enable_thinking\s*(?:=|is\s+not\s+defined\s+or)\s*)true", re.IGNORECASE)
BLOCK_START = re.compile(r"\{%-?\s*if\s+messages\[-1\]\[['\"]role['\"]\]\s*==\s*['\"]assistant['\"]\s*-?%\}")
TAG = re.compile(r"\{%-?\s*(if|endif)\b[^%]*-?%\}")


def remove_assistant_block(template: str) -> tuple[str, int]:
    """Remove each `{% if messages[-1]['role'] == 'assistant' %} ... {% endif %}` (nesting aware)."""
    removed = 0
    while (start := BLOCK_START.search(template)) is not None:
        depth = 0
        for tag in TAG.finditer(template, start.start()):
            depth += 1 if tag.group(1) == "if" else -1
            if depth == 0:
                template = template[: start.start()] + template[tag.end():]
                removed += 1
                break
        else:
            raise ValueError("unbalanced {% if %} in the chat template")
    return template, removed


def edit(config: dict) -> tuple[dict, list[str]]:
    template = config.get("chat_template")
    if not isinstance(template, str):
        return config, []
    done = []
    template, n = THINKING.subn(r"\1false", template)
    if n:
        done.append(f"enable_thinking default true -> false ({n}x)")
    template, n = remove_assistant_block(template)
    if n:
        done.append(f"removed the messages[-1]['role'] == 'assistant' block ({n}x)")
    return {**config, "chat_template": template}, done


def snapshot_files(hf_home: Path, model: str) -> list[Path]:
    repo = hf_home / "hub" / f"models--{model.replace('/', '--')}" / "snapshots"
    return sorted(repo.glob("*/tokenizer_config.json"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hf-home", required=True, type=Path)
    ap.add_argument("--model", required=True)
    a = ap.parse_args()
    files = snapshot_files(a.hf_home, a.model)
    if not files:
        print(f"no tokenizer_config.json for {a.model} under {a.hf_home}/hub", file=sys.stderr)
        return 1
    for path in files:
        config, done = edit(json.loads(path.read_text(encoding="utf-8")))
        if done:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
            tmp.replace(path)  # replaces the symlink, not the shared blob
        print(json.dumps({"file": str(path), "edits": done or ["already edited"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
