# Two images from one file:
#   docker build --target api -t guardrail-ft-api .        the control plane: FastAPI, no torch
#   docker build --target worker -t guardrail-ft-worker .  Celery workers and beat: CUDA torch
# Both install the same wheel; only the worker adds the `worker` extra (torch, transformers, peft).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# 1. The project's wheel, built once.
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY service ./service
COPY workers ./workers
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# 2. The API: the package's own dependencies only. The build fails if torch got in anyway.
FROM ${PYTHON_IMAGE} AS api
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 GFT_DATA_DIR=/data
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels \
    && ! python -c "import torch" 2>/dev/null \
    && python -c "import sys, service.api.app, service.metrics; assert 'torch' not in sys.modules" \
    && useradd --uid 10001 --create-home gft && mkdir -p /data && chown gft /data
USER gft
WORKDIR /home/gft
EXPOSE 8000
CMD ["guardrail-ft", "serve", "--host", "0.0.0.0", "--port", "8000"]

# 3. Workers (and beat): CUDA runtime base, the wheel with its `worker` extra. PyPI's Linux x86_64 torch wheels
#    are CUDA builds; the host needs only the NVIDIA driver (and the container toolkit).
FROM ${CUDA_IMAGE} AS worker
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DEBIAN_FRONTEND=noninteractive \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH GFT_DATA_DIR=/data GFT_WORKER_METRICS_PORT=9101
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* && python3 -m venv /opt/venv
COPY --from=build /wheels /wheels
RUN pip install "$(ls /wheels/*.whl)[worker]" && rm -rf /wheels \
    && useradd --uid 10001 --create-home gft && mkdir -p /data && chown gft /data
USER gft
WORKDIR /home/gft
EXPOSE 9101
CMD ["guardrail-ft", "worker", "--queues", "cpu,gpu", "--concurrency", "1"]
