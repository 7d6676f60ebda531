"""All configuration, read once from the environment (prefix GFT_)."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDER_ADMIN_KEY = "gft-admin-dev"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GFT_", env_file=".env", extra="ignore")

    environment: str = Field(default="development", description="development | production")
    data_dir: Path = Field(default=Path("var"), description="root for the SQLite file, artifacts and models")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite under data_dir")
    broker_url: str = Field(default="redis://127.0.0.1:6379/0", description="Celery broker (Redis protocol)")
    admin_key: str = Field(default=_PLACEHOLDER_ADMIN_KEY, description="bearer key for /admin/v1")
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    rate_limit_per_minute: int = Field(default=0, ge=0, description="requests per minute per API key; 0 = off")
    rate_limit_url: str = Field(default="", description="Redis for rate-limit counters; empty means broker_url")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = Field(
        default=1,
        ge=1,
        description="uvicorn processes `serve` runs; one per core on a machine of its own (one process uses one core)",
    )
    api_read_threads: int = Field(
        default=4,
        ge=1,
        le=64,
        description="threads per API process for the hot reads "
        "(GET job, list jobs); more overlap a remote database's round trips, fewer "
        "contend less for the GIL",
    )
    worker_device: str = Field(default="auto", description="auto | cpu | cuda")
    torch_threads: int = Field(default=0, ge=0, description="0 leaves torch's default")
    worker_metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="first port of the workers' /metrics (pool process i serves port + i); 0 = off",
    )
    # Orchestration (workers.orchestration): heartbeats, the reconciler, fair share, the test-only no-op trainer.
    trainer: str = Field(
        default="lora",
        pattern="^(lora|noop)$",
        description="lora | noop (no model work: orchestration tests and bench.queue only; refused in production)",
    )
    noop_train_seconds: float = Field(default=0.0, ge=0, description="how long a no-op training step lasts (tests)")
    screening_wait_s: float = Field(
        default=60.0,
        gt=0,
        le=600,
        description=(
            "how long `POST /v1/files/{id}/screen` waits for a cpu worker's report before answering 503 (retry)"
        ),
    )
    heartbeat_every_s: float = Field(default=10.0, gt=0, description="how often a running step records it is alive")
    stale_after_s: float = Field(default=120.0, gt=0, description="a step silent for this long is re-dispatched")
    reconcile_every_s: float = Field(default=30.0, gt=0, description="period of the gft.reconcile beat entry")
    max_active_jobs_per_tenant: int = Field(
        default=2,
        ge=1,
        description="jobs of one tenant admitted to the gpu "
        "queue or training at once (lowered by the tenant's own quota)",
    )
    artifact_store: str = Field(default="local", pattern="^(local|s3)$", description="local | s3")
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_endpoint_url: str = Field(default="", description="an S3-compatible endpoint; empty means AWS")

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> "Settings":
        if self.environment == "production" and self.admin_key == _PLACEHOLDER_ADMIN_KEY:
            raise ValueError("GFT_ADMIN_KEY must be set to a real secret in production")
        if self.environment == "production" and self.trainer == "noop":
            raise ValueError("GFT_TRAINER=noop releases untrained, unevaluated jobs: never in production")
        if self.artifact_store == "s3" and not self.s3_bucket:
            raise ValueError("GFT_ARTIFACT_STORE=s3 needs GFT_S3_BUCKET")
        return self

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'guardrail.db').resolve()}"

    @property
    def rate_limit_redis_url(self) -> str:
        return self.rate_limit_url or self.broker_url

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def cache_dir(self) -> Path:
        """Per-node caches and scratch (S3 staging and copies, the gate's base-model figures): safe to wipe."""
        return self.data_dir / "cache"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; cached, never built at import time."""
    return Settings()
