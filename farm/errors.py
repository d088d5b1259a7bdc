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
    ├── ToolMissingError           environment a program the stack needs is not installed
    └── SSHError                   ssh         a SUT host could not be reached or used over SSH
        ├── UnknownHostKeyError                its host key is not in the named known_hosts file
        ├── HostKeyChangedError                its host key differs from the one trusted (possible attack)
        ├── SSHAuthError                       it refused our user and key
        ├── SSHUnreachableError                no SSH answer within the connect timeout (transient)
        ├── RemoteTimeoutError                 a remote command overran its deadline and was stopped
        └── RemoteCommandError                 a remote command exited non-zero (code, stderr tail)

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


class SSHError(FarmError):
    """A SUT host could not be reached or used over SSH."""

    category = "ssh"


class UnknownHostKeyError(SSHError):
    """The host's key is not in the known_hosts file the hosts file names; nothing was trusted."""


class HostKeyChangedError(SSHError):
    """The host offered a key other than the one trusted for it: a possible attack, so refused."""


class SSHAuthError(SSHError):
    """The host refused our user and key (or there was no key to offer)."""


class SSHUnreachableError(SSHError):
    """The host did not answer SSH within the connect timeout (refused, unreachable, silent)."""

    transient = True


class RemoteTimeoutError(SSHError):
    """A remote command overran its deadline and was stopped on the host."""

    transient = True


class RemoteCommandError(SSHError):
    """A remote command exited non-zero; the message shows its exit code and the tail of its stderr."""

    def __init__(self, message: str, *, code: int, stdout: str = "", stderr: str = "",
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.stdout = stdout
        self.stderr = stderr
