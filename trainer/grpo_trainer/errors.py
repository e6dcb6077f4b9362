"""Errors that carry the failure type the pipeline reads from failure.json.

Each class maps to one `type` value so the pipeline's retry policy can tell an
out-of-memory from a bad config without parsing messages.
"""

from __future__ import annotations


class TrainerError(Exception):
    """Base class: `failure_type` is written verbatim into failure.json."""

    failure_type = "Unknown"


class InvalidConfigError(TrainerError):
    failure_type = "InvalidConfig"

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}")


class InvalidDataError(TrainerError):
    failure_type = "InvalidData"

    def __init__(self, path: str, line_no: int | None, reason: str) -> None:
        self.path = path
        self.line_no = line_no
        self.reason = reason
        where = f"{path}:{line_no}" if line_no is not None else path
        super().__init__(f"{where}: {reason}")


class ModelLoadError(TrainerError):
    failure_type = "ModelLoad"


class RayFailureError(TrainerError):
    failure_type = "RayFailure"


class RateLimitedError(TrainerError):
    failure_type = "RateLimited"

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message)


class ResumeMismatchError(InvalidConfigError):
    """A checkpoint_dir holds a run made with another model or data set."""
