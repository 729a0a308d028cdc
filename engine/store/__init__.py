"""Storage: SQLAlchemy models, sessions and migrations. Knows nothing of HTTP or BPMN."""

from ._db import Database
from ._migrate import current_revision, head_revision, migrate
from ._models import (
    ApiTokenRow,
    Base,
    CatalogRow,
    ConnectionRow,
    ConsentRow,
    DeploymentRow,
    IncidentRow,
    InstanceRow,
    OutboxEvent,
    OutboxValues,
    ProcessVersionRow,
    RateBucketRow,
    RecordRow,
    StepRow,
)
from ._signals import note_outbox_write, outbox_written
from ._types import (
    DictionaryMismatch,
    DictionaryPacked,
    learn_dictionary,
    pack,
    pack_json,
    unpack,
    unpack_json,
    utcnow,
)

__all__ = [
    "ApiTokenRow",
    "Base",
    "CatalogRow",
    "ConnectionRow",
    "ConsentRow",
    "Database",
    "DeploymentRow",
    "DictionaryMismatch",
    "DictionaryPacked",
    "IncidentRow",
    "InstanceRow",
    "OutboxEvent",
    "OutboxValues",
    "ProcessVersionRow",
    "RateBucketRow",
    "RecordRow",
    "StepRow",
    "current_revision",
    "head_revision",
    "learn_dictionary",
    "migrate",
    "note_outbox_write",
    "outbox_written",
    "pack",
    "pack_json",
    "unpack",
    "unpack_json",
    "utcnow",
]
