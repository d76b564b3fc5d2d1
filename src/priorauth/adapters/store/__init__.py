"""The durable store: SQLAlchemy 2 tables, Alembic migrations, and the database engine factory."""

from priorauth.adapters.store.database import (
    Database,
    DatabaseNotReady,
    execute,
    insert_row,
    migrate,
)
from priorauth.adapters.store.pas_tables import FhirClaimRow, OutboxRow, SubscriptionRow
from priorauth.adapters.store.review_tables import InformationRequestRow, NoteRow, NoticeRow
from priorauth.adapters.store.tables import (
    AppealRow,
    AuditEventRow,
    AuthorizationRow,
    Base,
    CaseRow,
    DeterminationRow,
    PolicyVersionRow,
    ReviewRow,
    SafetyVersionRow,
    UserRow,
)

__all__ = [
    "AppealRow",
    "AuditEventRow",
    "AuthorizationRow",
    "Base",
    "CaseRow",
    "Database",
    "DatabaseNotReady",
    "DeterminationRow",
    "FhirClaimRow",
    "InformationRequestRow",
    "NoteRow",
    "NoticeRow",
    "OutboxRow",
    "PolicyVersionRow",
    "ReviewRow",
    "SafetyVersionRow",
    "SubscriptionRow",
    "UserRow",
    "execute",
    "insert_row",
    "migrate",
]
