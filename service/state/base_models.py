"""Base models an admin registered: an id and a local folder loadable by from_pretrained."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.state.models import BaseModelRow


def register_base_model(*, session: Session, model_id: str, path: str) -> BaseModelRow:
    row = session.get(BaseModelRow, model_id)
    if row is None:
        row = BaseModelRow(id=model_id, path=path)
        session.add(row)
    else:
        row.path = path
    session.flush()
    return row


def get_base_model(*, session: Session, model_id: str) -> BaseModelRow | None:
    return session.get(BaseModelRow, model_id)


def list_base_models(*, session: Session) -> list[BaseModelRow]:
    return list(session.scalars(select(BaseModelRow).order_by(BaseModelRow.id)))
