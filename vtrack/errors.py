"""The vtrack exception tree.

Every error vtrack raises derives from :class:`VtrackError`. Each class knows the
exit code the command line uses for it, and each message names what was wrong
(the key, path or run) and, where useful, what to do about it.
"""

from __future__ import annotations

from typing import Any

#: Exit codes shared by every command (documented in docs/design-decisions.md).
EXIT_OK = 0
EXIT_DRIFT = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_STORE = 5
#: ``vtrack rerun``: the re-executed command exited non-zero, timed out or recorded no run
#: (a launch failure, never reported as divergence).
EXIT_FAILED_TO_RUN = 6
#: An exception that is not a VtrackError escaped a command: a bug in vtrack (BSD's
#: EX_SOFTWARE), so that scripts can trust 1 to mean drift or divergence.
EXIT_INTERNAL = 70


class VtrackError(Exception):
    """Root of every error vtrack raises on purpose."""

    exit_code: int = EXIT_STORE

    def __init__(self, message: str, *, hint: str | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.fields = fields

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class ValidationError(VtrackError, ValueError):
    """An argument broke a rule: a bad key, value, path or filter."""

    exit_code = EXIT_USAGE


class ParamConflictError(ValidationError):
    """A param was logged again with a different value; the first value is kept."""

    exit_code = EXIT_CONFLICT


class InputConflictError(ValidationError):
    """A dataset input was logged again under its name and context with other content."""

    exit_code = EXIT_CONFLICT


class QuerySyntaxError(ValidationError):
    """A filter or order-by string could not be parsed; ``column`` is 1-based."""

    def __init__(self, message: str, *, text: str = "", column: int = 0, **kw: Any) -> None:
        super().__init__(message, text=text, column=column, **kw)
        self.text = text
        self.column = column


class StoreNotFoundError(VtrackError):
    """The tracking URI does not name a vtrack store (a git repository)."""

    exit_code = EXIT_NOT_FOUND


class StoreError(VtrackError):
    """The store could not be read or written (I/O, git, corrupt data)."""

    exit_code = EXIT_STORE


class GitError(StoreError):
    """A git command failed; carries the command line and git's stderr."""

    def __init__(self, cmd: list[str], returncode: int, stderr: str) -> None:
        msg = f"git {' '.join(cmd)} failed with exit code {returncode}: {stderr.strip()}"
        super().__init__(msg, cmd=cmd, returncode=returncode, stderr=stderr)
        self.cmd = cmd
        self.returncode = returncode
        self.stderr = stderr


class CorruptObjectError(StoreError):
    """Stored bytes do not match their recorded digest."""


class RefConflictError(StoreError):
    """A compare-and-swap ref update lost a race: the ref moved meanwhile."""

    exit_code = EXIT_CONFLICT


class RunNotFoundError(VtrackError, LookupError):
    """No run matches the given id, prefix or name."""

    exit_code = EXIT_NOT_FOUND


class AmbiguousRunSpecError(VtrackError, LookupError):
    """A run spec matches several runs; ``candidates`` lists them."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, candidates: list[str], **kw: Any) -> None:
        super().__init__(message, candidates=candidates, **kw)
        self.candidates = candidates


class ExperimentNotFoundError(VtrackError, LookupError):
    """No experiment has the given id or name."""

    exit_code = EXIT_NOT_FOUND


class ExperimentExistsError(VtrackError):
    """An experiment with that name already exists."""

    exit_code = EXIT_CONFLICT


class RunStateError(VtrackError):
    """The call does not fit the run's state (no active run, already ended, nesting)."""

    exit_code = EXIT_CONFLICT


class DirtyWorktreeError(VtrackError):
    """A checkout would overwrite uncommitted changes in a working tree."""

    exit_code = EXIT_CONFLICT


class ArtifactError(VtrackError):
    """An artifact could not be logged, listed or read."""

    exit_code = EXIT_STORE


class ArtifactNotFoundError(ArtifactError, LookupError):
    """No artifact at that path in that run."""

    exit_code = EXIT_NOT_FOUND


class DatasetError(VtrackError):
    """A dataset input could not be hashed or recorded."""

    exit_code = EXIT_STORE


class InputMissingError(DatasetError, LookupError):
    """A run's recorded input is not on disk any more (a rerun or checkout needs it)."""

    exit_code = EXIT_NOT_FOUND


class DataDriftError(DatasetError):
    """A run's recorded input changed since the run; refused unless drift is allowed."""

    exit_code = EXIT_DRIFT


class MissingDependencyError(VtrackError, ImportError):
    """An optional dependency is needed for this call; the hint says how to install it."""

    exit_code = EXIT_USAGE


class NotSupportedError(VtrackError, NotImplementedError):
    """An MLflow call or argument that vtrack does not support (yet); the message names it."""

    exit_code = EXIT_USAGE


class RegisteredModelNotFoundError(VtrackError, LookupError):
    """No registered model, model version or alias of that name in the model registry."""

    exit_code = EXIT_NOT_FOUND


class RegisteredModelExistsError(VtrackError):
    """A registered model of that name exists already."""

    exit_code = EXIT_CONFLICT


class PromotionRefusedError(VtrackError):
    """The promotion policy refused to move an alias; ``fields["failed"]`` lists why."""

    exit_code = EXIT_CONFLICT
