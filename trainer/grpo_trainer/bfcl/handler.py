"""bfcl-eval model handler for models trained by grpo-pipeline (prompt mode).

bfcl-eval's documented way to evaluate a new model is a handler class (a
subclass of its `OSSHandler` for locally served models) plus an entry in its
model table; `register()` adds that entry at run time instead of editing the
installed package. The handler only formats prompts and decodes replies:
generation goes through bfcl-eval's own loop (single- and multi-turn, tool
execution for multi-turn) against an OpenAI-compatible `/v1/completions`
endpoint, and scoring is bfcl-eval's checkers.

Prompt: the model's own chat template (our format: a compact tool list in the
system turn; see grpo_trainer/model/chat_format.py) renders bfcl's function
documents as tools, with bfcl's original names (dots kept, so the checker
compares names unchanged) and types. bfcl's default prompt-mode system prompt
(asking for `[func(arg=value)]`) is not added: the model answers in the
format it was trained on, `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`,
and `decode_ast` / `decode_execute` turn those calls into bfcl's forms.
With GRPO_BFCL_PREFILL=1 the first assistant turn starts with the
`<tool_call>{"name": "` opener, as in training with
`env.workplace_assistant.prefill_tool_call`.
"""

from __future__ import annotations

import os
from typing import Any

from bfcl_eval.model_handler.local_inference.base_oss_handler import OSSHandler
from bfcl_eval.model_handler.utils import convert_to_function_call, func_doc_language_specific_pre_processing
from overrides import override

from ..model.chat_format import PREFILL
from . import MODEL_ID
from .format import as_tools, extract_calls

PREFILL_ENV = "GRPO_BFCL_PREFILL"


class GrpoToolCallHandler(OSSHandler):
    def __init__(self, model_name: str, temperature: float) -> None:
        super().__init__(model_name, temperature)
        self.is_fc_model = False
        self.prefill = os.environ.get(PREFILL_ENV) == "1"

    @override
    def decode_ast(self, result: Any, language: str = "Python") -> list[dict[str, Any]]:
        return extract_calls(result if isinstance(result, str) else str(result))

    @override
    def decode_execute(self, result: Any) -> list[str]:
        return convert_to_function_call(extract_calls(result if isinstance(result, str) else str(result)))

    @override
    def _pre_query_processing_prompting(self, test_entry: dict) -> dict:
        category = test_entry["id"].rsplit("_", 1)[0]
        functions = func_doc_language_specific_pre_processing(test_entry["function"], category)
        return {"message": [], "function": functions}

    def _wants_prefill(self, messages: list[dict[str, Any]]) -> bool:
        # The same rule as the training template: only the first assistant turn of a task.
        return (self.prefill and bool(messages) and messages[-1]["role"] != "tool"
                and not any(m["role"] == "assistant" for m in messages))

    @override
    def _format_prompt(self, messages: list[dict[str, Any]], function: list[dict[str, Any]]) -> str:
        prompt = self.tokenizer.apply_chat_template(messages, tools=as_tools(function), tokenize=False,
                                                    add_generation_prompt=True)
        if self._wants_prefill(messages) and not prompt.endswith(PREFILL):
            prompt += PREFILL
        return prompt

    @override
    def _query_prompting(self, inference_data: dict) -> tuple[Any, float]:
        api_response, latency = super()._query_prompting(inference_data)
        prompt = inference_data.get("inference_input_log", {}).get("formatted_prompt", "")
        if prompt.endswith(PREFILL):
            # The opener is part of the model's turn: keep it in the reply bfcl records and decodes.
            api_response.choices[0].text = PREFILL + api_response.choices[0].text
        return api_response, latency


def register(display_name: str = "grpo-pipeline model (Prompt)") -> str:
    """Add our model to bfcl-eval's model table (its extension point for new models)."""
    from bfcl_eval.constants.model_config import MODEL_CONFIG_MAPPING, ModelConfig

    MODEL_CONFIG_MAPPING[MODEL_ID] = ModelConfig(
        model_name=MODEL_ID, display_name=display_name, url="https://github.com/", org="grpo-pipeline",
        license="apache-2.0", model_handler=GrpoToolCallHandler, input_price=None, output_price=None,
        is_fc_model=False, underscore_to_dot=False)
    return MODEL_ID
