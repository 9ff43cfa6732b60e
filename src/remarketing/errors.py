"""One error hierarchy. Adapters map these to exit codes and HTTP statuses in one place each."""

from __future__ import annotations


class RemarketingError(Exception):
    """Base class: the message says what is wrong and how to fix it."""

    step: str | None = None
    # What the failed step had already found and still says about its run (a step.RecordChange: the
    # version it resolved before its deploy failed, say). The adapter writes it with the failure.
    found: object | None = None


class DataValidationError(RemarketingError):
    """The input file cannot be used. ``problems`` lists every finding, one sentence each."""

    def __init__(self, problems: list[str], *, source: str = "") -> None:
        self.problems = problems
        self.source = source
        head = f"{source} cannot be used" if source else "the file cannot be used"
        super().__init__(head + ":\n" + "\n".join(f"- {p}" for p in problems))


class ParameterError(RemarketingError):
    """A run's parameters (budget, cost, value, shares, ...) are wrong. ``problems`` names each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("the parameters are invalid:\n" + "\n".join(f"- {p}" for p in problems))


class InvalidRow(RemarketingError):
    """One customer row cannot be scored: names the row (0-based in the request) and the column."""

    def __init__(self, row: int, column: str, message: str) -> None:
        self.row, self.column = row, column
        super().__init__(f"row {row}, column {column!r}: {message}")


class InvalidColumn(RemarketingError):
    """A column of a columnar request cannot be scored as a whole (missing, or of another length)."""

    def __init__(self, column: str, message: str) -> None:
        self.column = column
        super().__init__(f"column {column!r} {message}")


class SpecError(RemarketingError):
    """A dataset spec is unknown or inconsistent."""


class StorageError(RemarketingError):
    """An address cannot be read or written."""


class PreconditionFailed(StorageError):
    """A create-only or generation-matched write lost a race."""


class NotFoundError(RemarketingError):
    """What was asked for does not exist (a run, a customer, a file)."""


class ModelNotFoundError(NotFoundError):
    """No model version matches what was asked (no champion yet, unknown version)."""


class Conflict(RemarketingError):
    """What was asked cannot be done in the current state (an experiment already runs, outcomes for a run
    that scored no one): nothing was changed."""


class ServiceError(RemarketingError):
    """A local service could not be started or reached."""


class Unavailable(RemarketingError):
    """A service this needs (the registry, storage, a model server) is down or did not answer in time:
    not the same as what was asked for not existing. The message names the service and what to do."""

    def __init__(self, service: str, address: str, what_to_do: str, *, reason: str = "") -> None:
        self.service, self.address, self.reason = service, address, reason
        why = f" ({reason})" if reason else ""
        super().__init__(f"{service} at {address} is unavailable{why}: {what_to_do}")
