"""The FastAPI application factory."""

import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from service import metrics
from service.api.deps import SettingsDep
from service.api.errors import install_error_handlers
from service.api.routes import admin, files, jobs, models
from service.state.db import session_scope


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

    app.add_middleware(metrics.RequestMetrics)  # outermost of ours: times the request-id middleware too

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz(settings: SettingsDep) -> JSONResponse:
        """Readiness: the database answers, so requests can be served."""
        try:
            with session_scope(settings.sqlalchemy_url) as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "reason": f"database: {type(exc).__name__}"}, 503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint() -> Response:
        """Prometheus exposition: request metrics of this process, job and queue figures of the fleet."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    return app
