"""/v1/models: base models available to fine-tune, plus the tenant's released fine-tuned models."""

from fastapi import APIRouter
from sqlalchemy import select

from schemas.common import ListPage
from schemas.tenants import ModelObject
from service.api.deps import CurrentTenant, SessionDep
from service.state.base_models import list_base_models
from service.state.models import JobRow

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("", response_model=ListPage[ModelObject])
def list_models(tenant: CurrentTenant, session: SessionDep) -> ListPage[ModelObject]:
    data = [ModelObject(id=m.id, created=m.created_at, owned_by="system") for m in list_base_models(session=session)]
    released = session.scalars(
        select(JobRow).where(JobRow.tenant_id == tenant.id, JobRow.fine_tuned_model.is_not(None)).order_by(JobRow.seq)
    )
    data += [
        ModelObject(id=j.fine_tuned_model or "", created=j.finished_at or j.created_at, owned_by=tenant.id)
        for j in released
    ]
    return ListPage[ModelObject](data=data)
