"""The effective policy: the tenant's override, else the global policy, else the built-in default."""

from sqlalchemy.orm import Session

from schemas.admin import PolicyVersion
from schemas.policy import Policy
from service.state.policies import latest_policy_row


def effective_policy(*, session: Session, tenant_id: str | None) -> PolicyVersion:
    """With tenant_id None, the global policy (or the default). Version 0 is the built-in default."""
    if tenant_id is not None:
        row = latest_policy_row(session=session, tenant_id=tenant_id)
        if row is not None and row.policy is not None:
            return PolicyVersion(
                version=row.version,
                scope="tenant",
                tenant_id=tenant_id,
                created_at=row.created_at,
                policy=Policy.model_validate(row.policy),
            )
    row = latest_policy_row(session=session, tenant_id=None)
    if row is not None and row.policy is not None:
        return PolicyVersion(
            version=row.version, scope="global", created_at=row.created_at, policy=Policy.model_validate(row.policy)
        )
    return PolicyVersion(version=0, scope="default", policy=Policy())
