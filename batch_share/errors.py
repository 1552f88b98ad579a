"""The one exception tree. Low-level errors (httpx, pandas, OS) are mapped into it at the
boundary where they happen, once; the CLI maps it to exit codes through `exit_code_for`.

Bad *data* is never raised: validation returns `Problem` values. Exceptions are for things
that stop a whole command.

    BatchShareError
    ├── UsageError                 exit 2: nothing was sent
    │   ├── SheetError             the sheet cannot be read, or lacks a required column
    │   ├── CredentialsError       no usable key; names where it looked, never the secret
    │   └── InsecureURLError       plain http:// to a host that is not loopback
    ├── SafetyGuardError           exit 4: the run was refused before sending anything
    │   ├── MassRemovalError       more removals than the brake allows
    │   └── LockHeldError          another run holds the state directory
    ├── ReportError                exit 1: the report could not be written (disk, permissions)
    ├── ApiError                   one HTTP exchange with the API went wrong
    │   ├── AuthRefusedError       401/403: stop everything (exit 3)
    │   ├── RetryableError         worth another attempt
    │   │   ├── RateLimitedError   429, with the server's Retry-After if it gave one
    │   │   ├── ServerError        5xx
    │   │   ├── TransportError     connection refused/reset/dropped
    │   │   └── RequestTimeoutError
    │   ├── RequestRejectedError   400/413 or a GraphQL error for the whole document
    │   ├── BadResponseError       not JSON, not a GraphQL response, too large, a redirect
    │   └── TLSError               the server's certificate or TLS handshake was refused
    └── InterruptedRunError        Ctrl-C/SIGTERM (exit 130)
"""

from __future__ import annotations

from batch_share.models import ExitCode


class BatchShareError(Exception):
    """Base of every error batch-share raises on purpose."""

    exit_code: ExitCode = ExitCode.USAGE


class UsageError(BatchShareError):
    exit_code = ExitCode.USAGE


class SheetError(UsageError):
    pass


class CredentialsError(UsageError):
    pass


class InsecureURLError(UsageError):
    pass


class SafetyGuardError(BatchShareError):
    exit_code = ExitCode.SAFETY_GUARD


class MassRemovalError(SafetyGuardError):
    pass


class LockHeldError(SafetyGuardError):
    pass


class ReportError(BatchShareError):
    """Raised after the work is done, so the exit code says "finished, but" rather than 2."""

    exit_code = ExitCode.SOME_ROWS_NOT_DONE


class ApiError(BatchShareError):
    """An HTTP exchange failed. `status` is the HTTP status when there was a response."""

    exit_code = ExitCode.SOME_ROWS_NOT_DONE

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthRefusedError(ApiError):
    exit_code = ExitCode.AUTH_REFUSED


class RetryableError(ApiError):
    pass


class RateLimitedError(RetryableError):
    def __init__(self, message: str, *, retry_after: float | None, status: int = 429) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ServerError(RetryableError):
    pass


class TransportError(RetryableError):
    pass


class RequestTimeoutError(RetryableError):
    pass


class RequestRejectedError(ApiError):
    pass


class BadResponseError(ApiError):
    pass


class TLSError(ApiError):
    """Not retryable: a certificate that fails verification now fails it on the next try too,
    and a server that cannot prove who it is must not be tried again and again."""


class InterruptedRunError(BatchShareError):
    exit_code = ExitCode.INTERRUPTED


def exit_code_for(error: BaseException) -> ExitCode:
    """The single table from errors to exit codes."""
    if isinstance(error, BatchShareError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    raise error
