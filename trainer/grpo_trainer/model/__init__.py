"""Model preparation and the prompt/tool-call format the built-in trainer uses."""
