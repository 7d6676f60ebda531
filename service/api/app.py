"""The FastAPI application factory."""

import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from service.api.errors import install_error_handlers
from service.api.routes import admin, files, jobs, models


def create_app() -> FastAPI:
    app = FastAPI(title="Guardrail FT", version="0.1.0",
                  description="OpenAI-compatible fine-tuning with a safety-preserving objective and a release gate.")
    install_error_handlers(app)
    for module in (files, jobs, models, admin):
        app.include_router(module.router)

    @app.middleware("http")
    async def _request_id(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request_id = request.headers.get("x-request-id") or f"req_{uuid.uuid4().hex}"
        response = await call_next(request)
        response.headers["x-request-id"] = request_id
        return response

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
