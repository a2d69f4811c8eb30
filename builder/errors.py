"""Errors a user can act on. The CLI prints their message alone (no traceback) and exits non-zero.

Pure Python on purpose: the runtime imports this module too.
"""

from __future__ import annotations


class BuilderError(Exception):
    """Base class: the message names the key or file at fault and the fix."""

    exit_code = 2


class ConfigError(BuilderError):
    """One or more configuration problems, all reported together."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(f"{n} configuration problem{'s' if n != 1 else ''}:\n{lines}")


class SourceError(BuilderError):
    """The model cannot be found or fetched."""


class StageError(BuilderError):
    """A build stage failed in a way the user can fix (tolerance exceeded, unsupported graph...). `record`: what
    the stage measured before it refused, kept with the rejected build's report."""

    def __init__(self, message: str, record: dict | None = None):
        super().__init__(message)
        self.record = record


class BundleIntegrityError(BuilderError):
    """A bundle's files do not match its manifest, or the bundle is unsafe to load."""


class Interrupted(BaseException):
    """SIGTERM (or another stop signal) arrived: raised like KeyboardInterrupt, so that every `finally` cleans up
    and no `except Exception` takes it for a failure. `stage`: the build stage it stopped, when known."""

    def __init__(self, signum: int):
        import signal

        self.signum = signum
        super().__init__(signal.Signals(signum).name)
