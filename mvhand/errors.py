"""The one place for mvhand's exception types.

Every error a user can cause (bad file, bad config, bad data) is an ``MvhandError``; the CLI
prints its message and exits with status 2 instead of showing a traceback.
"""

from __future__ import annotations

from pathlib import Path


class MvhandError(Exception):
    """Base class of every error mvhand raises on purpose."""


class ConfigError(MvhandError, ValueError):
    """A configuration key is unknown, has the wrong type, or is out of range."""


class InputError(MvhandError, ValueError):
    """An input file or array is missing, unreadable or inconsistent.

    Args:
        message: what is wrong and, where possible, what to do about it.
        path: the offending file; it is prefixed to the message.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


class CalibrationError(InputError):
    """A calibration is malformed, singular, or does not match the other inputs."""


class ModelError(MvhandError, RuntimeError):
    """A model backend failed to load or to run."""


class MissingDependencyError(MvhandError, ImportError):
    """An optional dependency is not installed; the message says how to install it."""


class OutputError(MvhandError, RuntimeError):
    """An output cannot be written (a file where a folder should be, no permission, full disk);
    the message names the path."""


class NumericalError(MvhandError, RuntimeError):
    """A computation produced a non-finite value (cost, step, weight); the message names the
    stage and the settings involved."""
