"""The FastAPI application factory."""

import uuid

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.errors import ErrorEnvelope
from service import metrics
from service.api.deps import SettingsDep
from service.api.errors import install_error_handlers
from service.api.routes import admin, files, jobs, models
from service.state.db import session_scope


class RequestId:
    """ASGI middleware: echo the caller's `x-request-id` or make one, on every response. Plain ASGI rather than
    `@app.middleware("http")`, which costs a task and a stream per request on the hot path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = Headers(scope=scope).get("x-request-id") or f"req_{uuid.uuid4().hex}"

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


def create_app() -> FastAPI:
    app = FastAPI(
        title="Guardrail FT",
        version="0.1.0",
        description="OpenAI-compatible fine-tuning with a safety-preserving objective and a release gate.",
        responses={"4XX": {"model": ErrorEnvelope, "description": "an error, in OpenAI's envelope"}},
    )
    install_error_handlers(app)
    for module in (files, jobs, models, admin):
        app.include_router(module.router)

    app.add_middleware(RequestId)
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
