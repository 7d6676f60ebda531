"""What the control plane's logic raises when a request cannot be served, in the domain's own terms.

Each kind carries what the caller needs to fix the request (a code, a message, the param at fault); the API
layer alone turns a kind into an HTTP status and the error envelope (service/api/errors.py), so the logic never
speaks HTTP and stays callable from the CLI, the workers and tests.
"""


class DomainError(Exception):
    """The base: `code` is a stable machine-readable name, `param` the request field at fault (None: none is).
    None of these clears on a quick retry; the request or the state it meets has to change first."""

    def __init__(self, message: str, *, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.param = message, code, param


class InvalidInput(DomainError):
    """The request names something unusable or sets a value the service refuses."""


class NotFound(DomainError):
    """The thing named does not exist for this caller (another tenant's counts as not existing)."""

    def __init__(self, kind: str, ident: str, *, param: str | None = None) -> None:
        super().__init__(f"No {kind} found with id '{ident}'.", code="not_found", param=param)


class Conflict(DomainError):
    """The thing exists but its state does not allow the action (a finished job cannot be cancelled)."""


class TooLarge(DomainError):
    """An upload is above the size the service or the tenant's quota allows."""


class KeyReused(DomainError):
    """An idempotency key sent again with a different request: the key is bound to its first request."""


class QuotaExceeded(DomainError):
    """The tenant has used up a quota; `retry_after` (seconds) when it is known to clear at a set time."""

    def __init__(self, message: str, *, code: str, retry_after: int | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
