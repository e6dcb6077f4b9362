"""GRPO training on TRL: checkpoints, metrics, validation, resume, Ray."""
