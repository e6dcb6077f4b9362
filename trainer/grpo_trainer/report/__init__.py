"""The run report's plots (matplotlib, headless); the pipeline writes report.md and report.html around them."""
