"""/admin/v1: tenants and base models (admin key only)."""

from pathlib import Path

from fastapi import APIRouter

from schemas.common import ListPage
from schemas.tenants import BaseModelRegister, ModelObject, Tenant, TenantCreate, TenantWithKey
from service.api.deps import AdminDep, SessionDep
from service.api.errors import ApiError
from service.state.base_models import register_base_model
from service.state.tenants import create_tenant, list_tenants

router = APIRouter(prefix="/admin/v1", tags=["admin"], dependencies=[AdminDep])


@router.post("/tenants", response_model=TenantWithKey)
def create(request: TenantCreate, session: SessionDep) -> TenantWithKey:
    """Create a tenant; its API key is returned only in this response."""
    row, key = create_tenant(session=session, name=request.name)
    return TenantWithKey(id=row.id, name=row.name, created_at=row.created_at, api_key=key)


@router.get("/tenants", response_model=ListPage[Tenant])
def list_(session: SessionDep) -> ListPage[Tenant]:
    return ListPage[Tenant](data=[Tenant(id=t.id, name=t.name, created_at=t.created_at)
                                  for t in list_tenants(session=session)])


@router.post("/models", response_model=ModelObject)
def register_model(request: BaseModelRegister, session: SessionDep) -> ModelObject:
    """Register a base model by local path (a folder with config.json, weights and a tokenizer)."""
    if not (Path(request.path) / "config.json").is_file():
        raise ApiError(400, f"No config.json under '{request.path}': the path must be a local model folder.",
                       param="path", code="invalid_model_path", retryable=False)
    row = register_base_model(session=session, model_id=request.id, path=request.path)
    return ModelObject(id=row.id, created=row.created_at, owned_by="system")
