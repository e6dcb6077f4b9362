"""BFCL v3 (Berkeley Function Calling Leaderboard) through the PyPI package `bfcl-eval`.

Runs in its own environment (`trainer/requirements-bfcl.lock`: bfcl-eval pins
numpy 1.26, which the trainer's lock cannot share). Only `options` is
imported by the trainer's command line; `handler` and `run` import bfcl_eval.
"""

BFCL_PACKAGE = "bfcl-eval"
DEFAULT_CATEGORIES = ("simple", "multiple", "parallel", "multi_turn_base")
# bfcl-eval derives a result directory from the model id by replacing "/" with "_"
# and back, so the id must not contain "_".
MODEL_ID = "grpo-pipeline/local-model"
