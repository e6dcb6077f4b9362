"""The one documented prompt and tool-call format of the built-in trainer.

SmolLM2's own chat template is plain ChatML and silently drops `tools`, so we
install this template on every tokenizer we train or evaluate with. It keeps
ChatML's special tokens (so no new embeddings are needed) and renders:

* the tool list compactly inside the system turn, one line per tool
  (`- name(arg: type, opt?: type): description`), because full JSON schemas
  cost ~100 tokens per tool, which a 2-core CPU cannot afford per rollout;
* an assistant tool call as `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`
  (the Hermes/Qwen convention, which TRL and transformers can parse);
* a tool result as a user turn wrapped in `<tool_response>...</tool_response>`;
* optionally (`prefill_tool_call`), the first assistant turn of a task starts
  with `<tool_call>{"name": "` already written, so a small model only has to
  choose the tool and its arguments. Later turns are free: after a tool result
  the model may answer in text, which ends the episode. transformers' parser
  reads the prefilled opener from the prompt (`parse_response(prefix=...)`).

The template is prefix-preserving (each message renders independently), which
TRL's multi-turn loop requires to splice tool results into a rollout.

`training_chat_template` is the same template with transformers'
`{% generation %}` markers around exactly the tokens a rollout generates: an
assistant turn's text and calls and its closing `<|im_end|>` (not the newline
after it, not the prefilled opener of the first turn). The supervised warm
start (training/warm_start.py) masks its loss with them. It is derived from
the one template by anchored replacements and renders the same bytes
(tests/test_warm_start.py checks that); tokenizers that are saved, exported or
used for rollouts and evaluation carry the plain template.
"""

from __future__ import annotations

from typing import Any

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"

# Jinja, rendered by transformers' apply_chat_template.
CHAT_TEMPLATE = (
    "{%- macro render_tools() %}"
    "{{- 'You can use these tools. To call one, answer with exactly one line '"
    "+ '<tool_call>{\"name\": \"<tool name>\", \"arguments\": {\"<argument>\": \"<value>\"}}</tool_call> '"
    "+ 'and wait for its result. When the request is done, answer briefly without a tool call.\\nTools:' }}"
    "{%- for tool in tools %}"
    "{%- set fn = tool['function'] if tool['function'] is defined else tool %}"
    "{%- set req = fn['parameters']['required'] if fn['parameters']['required'] is defined else [] %}"
    "{{- '\\n- ' + fn['name'] + '(' }}"
    "{%- for pname, spec in fn['parameters']['properties'].items() %}"
    "{{- pname + ('' if pname in req else '?') + ': ' "
    "+ (spec['type'] if spec['type'] is string else spec['type'][0]) }}"
    "{%- if not loop.last %}{{- ', ' }}{%- endif %}"
    "{%- endfor %}"
    "{{- '): ' + fn['description'] }}"
    "{%- endfor %}"
    "{%- endmacro %}"
    # Without a system message (BFCL, plain chat clients) the tools get a system turn of their own.
    "{%- if tools and messages and messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\n' }}{{- render_tools() }}{{- '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + message['content'] }}"
    "{%- if tools %}{{- '\\n\\n' }}{{- render_tools() }}{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- elif message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if message['content'] %}{{- message['content'] }}{%- endif %}"
    "{%- if message['tool_calls'] is defined and message['tool_calls'] %}"
    "{%- for call in message['tool_calls'] %}"
    "{%- set fn = call['function'] if call['function'] is defined else call %}"
    "{%- if loop.first and message['content'] %}{{- '\\n' }}{%- endif %}"
    "{{- '<tool_call>{\"name\": \"' + fn['name'] + '\", \"arguments\": ' }}"
    "{%- if fn['arguments'] is string %}{{- fn['arguments'] }}{%- else %}{{- fn['arguments'] | tojson }}{%- endif %}"
    "{{- '}</tool_call>' }}"
    "{%- endfor %}"
    "{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- elif message['role'] == 'tool' %}"
    "{{- '<|im_start|>user\\n<tool_response>\\n' + message['content'] + '\\n</tool_response><|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "__PREFILL__"
    "{%- endif %}"
)

PREFILL = '<tool_call>{"name": "'
_PREFILL_JINJA = ("{%- if messages[-1]['role'] != 'tool' and not (messages | selectattr('role', 'equalto', "
                  "'assistant') | list) %}{{- '" + PREFILL.replace('"', '\\"') + "' }}{%- endif %}")


def chat_template(prefill_tool_call: bool = False) -> str:
    return CHAT_TEMPLATE.replace("__PREFILL__", _PREFILL_JINJA if prefill_tool_call else "")


# Where the training variant differs from the template (each text occurs once in it).
_ASSISTANT_OPEN = "{%- elif message['role'] == 'assistant' %}{{- '<|im_start|>assistant\\n' }}"
_CALL_OPEN = "{{- '<tool_call>{\"name\": \"' + fn['name']"
_ASSISTANT_CLOSE = "{{- '<|im_end|>\\n' }}{%- elif message['role'] == 'tool' %}"
# A turn is prefilled exactly when the rollout's generation prompt for it (the messages before it,
# add_generation_prompt=True) ends with PREFILL: the first assistant turn, not after a tool result.
# The warm start keeps only traces whose prefilled turn starts with a call (what the opener forces).
_PREFILLED_JINJA = ("{%- set prefilled = not message['content'] and message['tool_calls'] is defined "
                    "and message['tool_calls'] and (loop.first or messages[loop.index0 - 1]['role'] != 'tool') "
                    "and not (messages[:loop.index0] | selectattr('role', 'equalto', 'assistant') | list) %}")


def training_chat_template(prefill_tool_call: bool = False) -> str:
    """`chat_template(prefill_tool_call)` plus `{% generation %}` markers for assistant-only loss."""
    template = chat_template(prefill_tool_call)
    prefilled = _PREFILLED_JINJA if prefill_tool_call else "{%- set prefilled = false %}"
    opener = PREFILL.replace('"', '\\"')
    replacements = (
        (_ASSISTANT_OPEN, _ASSISTANT_OPEN + prefilled + "{%- if prefilled %}{{- '" + opener + "' }}{%- endif %}"
         "{%- generation %}"),
        (_CALL_OPEN, "{{- ('' if prefilled and loop.first else '" + opener + "') + fn['name']"),
        (_ASSISTANT_CLOSE, "{{- '<|im_end|>' }}{%- endgeneration %}{{- '\\n' }}{%- elif message['role'] == 'tool' %}"),
    )
    for anchor, replacement in replacements:
        if template.count(anchor) != 1:  # pragma: no cover - guards edits of CHAT_TEMPLATE
            raise AssertionError(f"chat template anchor not found exactly once: {anchor!r}")
        template = template.replace(anchor, replacement)
    return template


def install_chat_format(tokenizer: Any, prefill_tool_call: bool = False, training: bool = False) -> Any:
    """Put our template and tool-call parser on a tokenizer (in place) and return it.

    The parser is TRL's spec for the `<tool_call>` JSON convention; we reuse it
    rather than write another regex so TRL's rollout loop and our evaluator
    read tool calls identically. `training=True` installs the variant with
    `{% generation %}` markers (the warm start's loss mask); never save it.
    """
    from trl.chat_template_utils import _SUPPORTS_RESPONSE_TEMPLATE, qwen3_schema, qwen3_template

    tokenizer.chat_template = (training_chat_template if training else chat_template)(prefill_tool_call)
    if _SUPPORTS_RESPONSE_TEMPLATE:
        tokenizer.response_template = qwen3_template
    else:  # pragma: no cover - older transformers only
        tokenizer.response_schema = qwen3_schema
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def parse_assistant_turn(tokenizer: Any, ids: list[int], prompt_ids: list[int]) -> dict[str, Any]:
    """Parse one generated assistant turn into `{content, tool_calls}`.

    `prompt_ids` lets the parser see a prefilled `<tool_call>` opener. Malformed
    tool-call JSON is not an exception for the caller: a policy that writes
    broken JSON simply made no valid call, which the reward reflects.
    """
    text = tokenizer.decode(ids, skip_special_tokens=True)
    try:
        parsed = tokenizer.parse_response(ids, prefix=prompt_ids)
    except Exception:  # noqa: BLE001 - any parser failure means "no valid call"
        return {"role": "assistant", "content": text, "tool_calls": []}
    if not isinstance(parsed, dict):
        return {"role": "assistant", "content": text, "tool_calls": []}
    valid = []
    for call in parsed.get("tool_calls") or []:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            continue
        arguments = fn.get("arguments")
        # A call with no (or non-object) arguments is still a call; the tool
        # answers with its own missing-argument error.
        valid.append({"type": "function", "function": {
            "name": fn["name"], "arguments": arguments if isinstance(arguments, dict) else {}}})
    return {"role": "assistant", "content": parsed.get("content") or "", "tool_calls": valid}
