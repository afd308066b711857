"""Exceptions that the CLI turns into one-line messages and exit codes."""
from __future__ import annotations


class CloudbuttonError(Exception):
    """Base class of errors reported to the user as one line (exit code 1)."""

    exit_code = 1


class InputError(CloudbuttonError):
    """A bad input: names the file and the problem (exit code 2).

    Parameters
    ----------
    path : str
        The offending file, URI or argument.
    problem : str
        What is wrong with it, in a few words.
    """

    exit_code = 2

    def __init__(self, path: object, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # keep (path, problem) across pickling to workers and back
        return (type(self), (self.path, self.problem))


class TaskFailed(CloudbuttonError):
    """A task kept failing after its retries; carries the remote traceback text."""

    def __init__(self, stage: str, partition: int, attempts: int, error: str, traceback: str = ""):
        self.stage, self.partition, self.attempts = stage, partition, attempts
        self.error, self.traceback = error, traceback
        super().__init__(
            f"stage '{stage}' partition {partition} failed after {attempts} attempt(s): {error}"
        )

    def __reduce__(self):
        return (type(self), (self.stage, self.partition, self.attempts, self.error, self.traceback))


class TaskTimeout(CloudbuttonError):
    """Raised inside a task (or by the driver) when a task exceeds its time limit."""
