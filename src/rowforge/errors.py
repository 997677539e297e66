"""One error hierarchy for rowforge; every message names what failed and where.

`RowforgeError` is the root a user catches. The state-machine errors (`SpecError`,
`GuardRejected`, `IllegalTransition`, `ReplayError`) signal a broken spec or a bug in rowforge:
a user should never see the latter two from a correct engine.
"""

from __future__ import annotations


def describe_error(error: BaseException) -> str:
    """`Type: message` (or just `Type` when the message is empty): the one way rowforge names a
    cause in drop reasons, traces and error messages, so both engines word it identically."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class RowforgeError(Exception):
    """Root of every error rowforge raises on purpose."""


class ConfigError(RowforgeError):
    """Bad user input: cycles, unknown references, duplicate names, invalid values."""


class DatasetGenerationError(RowforgeError):
    """The run failed; the message names the row group, step or processor and the cause."""


class DatasetProcessingError(DatasetGenerationError):
    """A processor or batch step broke its contract, e.g. changed a row group's row count."""


class EarlyShutdownError(DatasetGenerationError):
    """The engine decided a model provider is broken and ended the run early.

    Raised by `build()` (and every run path) whether or not complete rows were salvaged: those
    stay on disk and metadata.json says `early_shutdown: true`. The message names the step
    (column), the model and the status the provider answered with. Two things end a run this
    way: the early-shutdown breaker (too many model tasks failed for good) and the no-success
    budget (a model answered nothing but rejections for `RunConfig.no_success_budget_s`).
    """


class StepOutputError(RowforgeError, ValueError):
    """A step returned a value of the wrong shape for one cell (for example a step with extra
    columns that left one out): that cell fails and its row is dropped, like any other error a
    step raises; the run goes on."""


class PartialDatasetError(RowforgeError):
    """Fewer records than the target were written and the user asked for that to raise."""


class SpecError(RowforgeError):
    """A state-machine spec in `specs/` is invalid; the message names the file and the entry."""


class TransitionError(RowforgeError):
    """A machine refused a trigger; carries where and why so a log line is self-explanatory."""

    def __init__(self, machine: str, ident: object, trigger: str, state: str, reason: str) -> None:
        self.machine = machine
        self.ident = ident
        self.trigger = trigger
        self.state = state
        super().__init__(f"{machine} {ident!r}: trigger {trigger!r} in state {state!r}: {reason}")


class IllegalTransition(TransitionError):
    """The trigger is not a transition out of the current state (INV-1). State is unchanged."""

    def __init__(self, machine: str, ident: object, trigger: str, state: str) -> None:
        super().__init__(machine, ident, trigger, state, "no such transition in the spec")


class GuardRejected(TransitionError):
    """A guard refused the transition; names the guard. State is unchanged."""

    def __init__(
        self, machine: str, ident: object, trigger: str, state: str, guard: str, expected: bool
    ) -> None:
        self.guard = guard
        self.expected = expected
        wanted = "true" if expected else "false"
        super().__init__(
            machine, ident, trigger, state, f"guard {guard!r} must be {wanted} but was not"
        )


class ReplayError(RowforgeError):
    """An event log contains a state change the specs do not allow (INV-1)."""


class RetryableError(RowforgeError):
    """Raised by a step (or a model client) for a failure worth retrying: timeout, 5xx, connection.

    `retry_after` (seconds), when the provider sent one, sets the wait before the next attempt
    (honoured up to `RunConfig.max_retry_after_s`). `status` is the HTTP status the provider
    answered with, when there was an answer: warnings and errors name it.
    """

    def __init__(
        self, message: str, retry_after: float | None = None, *, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class RateLimitError(RetryableError):
    """The provider asked us to slow down (HTTP 429). Retried with pacing; never a failure of the
    task by itself (the run's no-success budget bounds a provider that only ever says this)."""

    def __init__(
        self, message: str, retry_after: float | None = None, *, status: int | None = 429
    ) -> None:
        super().__init__(message, retry_after, status=status)


class ProviderTimeoutError(RetryableError):
    """No complete answer arrived within the model's timeout (retryable; named 'timeout')."""


class ProviderConnectionError(RetryableError):
    """Connecting failed, or the connection broke before the whole answer arrived (retryable;
    named 'connection error')."""
