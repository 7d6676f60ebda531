"""Requests to the Guardrail FT API and the mapping of every way one can fail to a single, readable line."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

DEFAULT_API_URL = "http://127.0.0.1:8000"
# Above the API's own longest wait (the screening dry run's GFT_SCREENING_WAIT_S, 60 s by default), so the API's
# answer, not our timeout, is what the user sees.
TIMEOUT_S = 90.0


class ClientFailure(Exception):
    """Whatever stops a command (an API error, an unreachable server, a bad local file); `str()` is one line."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(" ".join(message.split()))
        self.status, self.code = status, code


def failure_from_response(response: httpx.Response) -> ClientFailure:
    """The API's envelope `{error: {message, type, param, code}}` as one line with the status, code, param and
    request id; a body that is not the envelope (a proxy's error page) is named by its status alone."""
    try:
        error = response.json()["error"]
        message, code, param = str(error["message"]), error.get("code"), error.get("param")
    except (ValueError, KeyError, TypeError):
        message, code, param = f"the API answered {response.status_code} {response.reason_phrase}", None, None
    details = [f"HTTP {response.status_code}"]
    details += [f"code {code}"] if code else []
    details += [f"param {param}"] if param else []
    details += [f"request {rid}"] if (rid := response.headers.get("x-request-id")) else []
    return ClientFailure(f"{message} ({', '.join(details)})", status=response.status_code, code=code)


class ApiClient:
    """One base URL and bearer key; every call returns the decoded body or raises ClientFailure."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "guardrail-ft-cli"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "ApiClient":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The response of a call that succeeded (2xx), its body read."""
        with self.stream(method, path, **kwargs) as response:
            response.read()
            return response

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A successful response whose body is still to be read (a download); errors are read and raised."""
        headers = {"x-request-id": f"req_cli_{uuid.uuid4().hex}", **kwargs.pop("headers", {})}
        try:
            with self._http.stream(method, path, headers=headers, **kwargs) as response:
                if response.is_error:
                    response.read()
                    raise failure_from_response(response)
                yield response
        except httpx.TimeoutException:
            raise ClientFailure(
                f"The API at {self.base_url} did not answer within {self._http.timeout.read or 0:g}s."
            ) from None
        except httpx.TransportError as exc:
            raise ClientFailure(
                f"Cannot reach the API at {self.base_url}: {exc or type(exc).__name__}. Set --api-url or GFT_API_URL."
            ) from None
        except (httpx.InvalidURL, httpx.HTTPError) as exc:
            raise ClientFailure(f"Request to {self.base_url}{path} failed: {exc}") from None

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise ClientFailure(f"The API answered {method} {path} with a body that is not JSON.") from None

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.json("GET", path, params=_drop_none(params))

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.json("POST", path, json=body, **kwargs)

    def put(self, path: str, body: Any) -> Any:
        return self.json("PUT", path, json=body)


def _drop_none(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """Options left unset are left out of the query rather than sent as empty values."""
    return None if params is None else {k: v for k, v in params.items() if v is not None}


def connect(base_url: str, api_key: str | None) -> ApiClient:
    if not api_key:
        raise ClientFailure("No API key: pass --api-key or set GFT_API_KEY (GFT_ADMIN_KEY for admin commands).")
    if not base_url.startswith(("http://", "https://")):
        raise ClientFailure(f"Invalid API URL '{base_url}': it must start with http:// or https://.")
    return ApiClient(base_url, api_key)
