"""Admin-facing tenant and base-model types."""

from pydantic import BaseModel, ConfigDict, Field


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)


class Tenant(BaseModel):
    id: str
    name: str
    created_at: int


class BaseModelRegister(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")
    path: str = Field(min_length=1, max_length=4096, description="local folder loadable by from_pretrained")


class ModelObject(BaseModel):
    id: str
    object: str = "model"
    created: int
    owned_by: str
