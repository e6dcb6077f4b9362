"""Rollouts: the workplace environment as TRL sees it, and our evaluator."""
