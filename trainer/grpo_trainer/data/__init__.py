"""Task data: the WorkBench -> NeMo Gym converter and the JSONL task loader."""
