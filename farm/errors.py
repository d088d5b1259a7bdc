"""The one error tree of Loadfarm.

    FarmError                      (category, transient)
    ├── SpecError                  spec        a sweep file or a stack manifest is wrong
    ├── SweepConflictError         spec        same sweep name, different spec
    ├── NotFoundError              spec        a named sweep, stack or cell does not exist
    ├── StoreError                 store       the results database failed
    ├── ProvisionError             provision   a stack could not be started
    ├── ReadinessError             readiness   a stack did not become ready in time
    ├── LoadError                  load        Locust failed or produced no statistics
    ├── ResetError                 reset       a stack's cache reset did not answer 2xx
    ├── MetricsError               metrics     a stack's metrics document is unreadable or malformed
    ├── StackLostError             stack       the stack died under a running group (retried)
    ├── CancelledError             cancel      the user stopped the work
    └── ToolMissingError           environment a program the stack needs is not installed

Every error reads as one line for the user: what went wrong and what to do. `transient` tells a retrying
caller (a Celery task, a store write) whether trying again may help.
"""

from __future__ import annotations


class FarmError(Exception):
    """Root of every error Loadfarm raises on purpose."""

    category = "internal"
    transient = False
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class SpecError(FarmError):
    """A sweep file or stack manifest is invalid; nothing has been written."""

    category = "spec"
    exit_code = 2


class SweepConflictError(SpecError):
    """A sweep of this name exists with a different spec."""


class NotFoundError(FarmError):
    """A named sweep, stack or cell does not exist."""

    category = "spec"
    exit_code = 2


class StoreError(FarmError):
    """The results database failed or is not reachable."""

    category = "store"
    transient = True


class ProvisionError(FarmError):
    """The stack under test could not be started."""

    category = "provision"


class ReadinessError(FarmError):
    """The stack under test did not answer its health check before the deadline."""

    category = "readiness"
    transient = True


class LoadError(FarmError):
    """The load generator failed or produced no statistics."""

    category = "load"


class ResetError(FarmError):
    """A stack's cache-reset endpoint failed (refused, closed, or answered other than 2xx)."""

    category = "reset"


class MetricsError(FarmError):
    """A stack's metrics endpoint failed or its document is not what the stack contract says."""

    category = "metrics"


class StackLostError(FarmError):
    """The stack under test stopped answering while its group ran; the group is tried again."""

    category = "stack"
    transient = True


class CancelledError(FarmError):
    """The user cancelled the work (Ctrl-C or `farm cancel`)."""

    category = "cancel"
    exit_code = 130


class ToolMissingError(FarmError):
    """A program the stack recipe needs (nginx, redis-server, …) is not installed."""

    category = "environment"
    exit_code = 2
