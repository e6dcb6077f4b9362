"""Re-implementation of NeMo Gym's "workplace_assistant" environment (WorkBench).

Modules: ``databases`` (CSV state), ``tools`` (the 27 tools), ``session`` (one
rollout's sandbox), ``verifier`` (state-matching reward), ``schemas`` (what the
model is shown).
"""
