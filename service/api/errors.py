"""One error envelope for everything, FastAPI's own validation errors included."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas.errors import ErrorBody, ErrorEnvelope
from service.errors import Conflict, DomainError, InvalidInput, KeyReused, NotFound, QuotaExceeded, TooLarge

log = logging.getLogger(__name__)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}

# The one place the logic's errors (service/errors.py) become HTTP statuses.
DOMAIN_STATUS: dict[type[DomainError], int] = {
    InvalidInput: 400,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    KeyReused: 422,
    QuotaExceeded: 429,
}


class ApiError(Exception):
    """Raised by the API layer itself (the caller's key, rate limits, checks a route makes); `retryable=False`
    tells the openai client not to retry. Logic modules raise service.errors' kinds instead."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retryable: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.retryable, self.headers = retryable, headers or {}


def domain_status(exc: DomainError) -> int:
    """The status of the most specific mapped kind; 500 for a kind nobody mapped (a bug, caught by a test)."""
    return next((DOMAIN_STATUS[kind] for kind in type(exc).__mro__ if kind in DOMAIN_STATUS), 500)


def domain_headers(exc: DomainError) -> dict[str, str]:
    """No domain error clears on the openai client's quick retries; a quota that resets says when."""
    headers = {"x-should-retry": "false"}
    if isinstance(exc, QuotaExceeded) and exc.retry_after is not None:
        headers["retry-after"] = str(exc.retry_after)
    return headers


def envelope(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorEnvelope(
        error=ErrorBody(message=message, type=_TYPES.get(status, "server_error"), param=param, code=code)
    )
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    first = exc.errors()[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    param = ".".join(loc) or None
    msg = first.get("msg", "invalid request").removeprefix("Value error, ")
    if first.get("type") == "extra_forbidden":
        msg = "unknown field (not accepted)"
    return (f"Invalid '{param}': {msg}" if param else msg), param


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        headers = dict(exc.headers)
        if not exc.retryable:
            headers["x-should-retry"] = "false"
        return envelope(exc.status, exc.message, param=exc.param, code=exc.code, headers=headers)

    @app.exception_handler(DomainError)
    async def _domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        return envelope(domain_status(exc), exc.message, param=exc.param, code=exc.code, headers=domain_headers(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return envelope(400, message, param=param, code="invalid_request", headers={"x-should-retry": "false"})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return envelope(exc.status_code, str(exc.detail), headers={"x-should-retry": "false"})

    @app.exception_handler(DataError)
    async def _unstorable_value(_request: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the request carried (a NUL character in a text field, say): the
        # caller's input, not our fault; the transaction was rolled back.
        reason = str(exc.orig).splitlines()[0] if exc.orig else "invalid value"
        return envelope(
            400,
            f"A value in the request cannot be stored or searched for: {reason}.",
            code="invalid_value",
            headers={"x-should-retry": "false"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return envelope(500, "The server had an error while processing your request.", code="internal_error")
