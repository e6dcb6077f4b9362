"""Small standalone scripts the pipeline runs outside the trainer's environment (stdlib only unless
a docstring says otherwise), e.g. inside a NeMo RL checkout's venv with `uv run python <file>`."""
