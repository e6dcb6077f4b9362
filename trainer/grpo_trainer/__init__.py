"""GRPO trainer for tool-calling agents."""
