"""The tables. One row class per concept; columns say what each fact is."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ._types import JSONType, PackedJSON, PackedText, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only autoincrements INTEGER primary keys; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class CatalogRow(Base):
    """The last accepted definition of a catalog, to judge the next reload against."""

    __tablename__ = "catalogs"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType())
    source: Mapped[str] = mapped_column(String(500), default="")
    content_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RecordRow(Base):
    __tablename__ = "records"
    # Record ids are never reused, not even after a delete: processes derive outside ids
    # from them (a Calendar event id), which must not point at a newer record. SQLite
    # needs AUTOINCREMENT for that; PostgreSQL sequences never go back.
    __table_args__ = (
        Index("ix_records_catalog_id", "catalog", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    catalog: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType())
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Set by processes' records.create: a replayed create finds the first one.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OutboxEvent(Base):
    """A record change, written in the same transaction as the change itself."""

    __tablename__ = "outbox_events"
    __table_args__ = (Index("ix_outbox_events_pending", "dispatched_at", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    catalog: Mapped[str] = mapped_column(String(100))
    record_id: Mapped[int] = mapped_column(Id)
    kind: Mapped[str] = mapped_column(String(20))  # created | updated | deleted
    changed: Mapped[list[str]] = mapped_column(JSONType())
    cause_kind: Mapped[str] = mapped_column(String(20))  # user | instance | system
    cause_user: Mapped[str | None] = mapped_column(String(200))
    cause_instance_id: Mapped[int | None] = mapped_column(Id)
    cause_process_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    dispatch_note: Mapped[str | None] = mapped_column(Text)
    # The record's values before and after, until the event is dispatched.
    values: Mapped[OutboxValues | None] = relationship(
        lazy="joined", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def old(self) -> dict[str, Any] | None:
        return self.values.old if self.values is not None else None

    @property
    def new(self) -> dict[str, Any] | None:
        return self.values.new if self.values is not None else None


class OutboxValues(Base):
    """An outbox event's record values, before and after; deleted once the event is
    dispatched (they travel on as the started instances' variables).

    A table of their own, not columns of the event: a row deleted frees its room
    for the next ones, where a column cleared would leave a hole in the event's page.
    """

    __tablename__ = "outbox_values"

    event_id: Mapped[int] = mapped_column(
        Id, ForeignKey("outbox_events.id", ondelete="CASCADE"), primary_key=True
    )
    old: Mapped[dict[str, Any] | None] = mapped_column(PackedJSON(), nullable=True)
    new: Mapped[dict[str, Any] | None] = mapped_column(PackedJSON(), nullable=True)


class DeploymentRow(Base):
    """One accepted BPMN file, byte for byte."""

    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    filename: Mapped[str] = mapped_column(String(500))
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    xml: Mapped[str] = mapped_column(Text)
    deployed_by: Mapped[str] = mapped_column(String(200), default="")
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProcessVersionRow(Base):
    """A process as parsed from one deployment; the spec is stored here once."""

    __tablename__ = "process_versions"
    __table_args__ = (UniqueConstraint("process_id", "version"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    process_id: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(500), default="")
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"))
    content_hash: Mapped[str] = mapped_column(String(64))
    spec: Mapped[str] = mapped_column(Text)  # serialised SpiffWorkflow spec (JSON)
    # Script limits the process asks for (cpu_seconds, memory_bytes); defaults otherwise.
    limits: Mapped[dict[str, float] | None] = mapped_column(JSONType())
    # Other process properties (e.g. record_on_incident).
    options: Mapped[dict[str, Any] | None] = mapped_column(JSONType())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # What the states and step logs of this version's instances are packed against,
    # learned from its first completed instance; set once, never changed (values
    # packed against it could not be read otherwise). Never shown: it holds data.
    pack_dictionary: Mapped[bytes | None] = mapped_column(LargeBinary(), nullable=True)


class InstanceRow(Base):
    __tablename__ = "instances"
    __table_args__ = (
        UniqueConstraint("event_id", "rule_key"),
        Index("ix_instances_due", "state", "due_at"),
        Index("ix_instances_serial", "serial_key", "id"),
        Index("ix_instances_record", "record_catalog", "record_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    process_id: Mapped[str] = mapped_column(String(200), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"))
    # queued | running | waiting | completed | incident | suspended | cancelled
    state: Mapped[str] = mapped_column(String(20))
    serial_key: Mapped[str | None] = mapped_column(String(300))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_events.id"))
    rule_key: Mapped[str | None] = mapped_column(String(300))
    record_catalog: Mapped[str | None] = mapped_column(String(100))
    record_id: Mapped[int | None] = mapped_column(Id)
    # Serialised state, without the spec; bytes if packed against the version's dictionary.
    workflow: Mapped[str | bytes] = mapped_column(PackedText())
    # When a worker should next look at it: now for runnable work, a timer's
    # or back-off's wake-up time, NULL while it waits for a person or is finished.
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    suspended_state: Mapped[str | None] = mapped_column(String(20))
    waiting_for: Mapped[str | None] = mapped_column(Text)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONType())
    cause: Mapped[dict[str, Any]] = mapped_column(JSONType())
    runs: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StepRow(Base):
    """What one task of one instance did: the step log operators read."""

    __tablename__ = "steps"
    __table_args__ = (Index("ix_steps_instance", "instance_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"))
    task_id: Mapped[str] = mapped_column(String(64))
    element_id: Mapped[str] = mapped_column(String(200))
    element_name: Mapped[str] = mapped_column(String(500), default="")
    element_type: Mapped[str] = mapped_column(String(100), default="")
    # completed | failed | caught | skipped | waiting | cancelled | note
    outcome: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    duration_ms: Mapped[float] = mapped_column(default=0.0)
    changed: Mapped[dict[str, Any] | bytes | None] = mapped_column(PackedJSON())
    message: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(200))
    # Outbound requests the step made, with their answers; secrets redacted.
    exchanges: Mapped[list[dict[str, Any]] | bytes | None] = mapped_column(PackedJSON())


class IncidentRow(Base):
    """A failure that needs a person; stays as history once resolved."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_open", "resolved_at", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"))
    task_id: Mapped[str | None] = mapped_column(String(64))
    element_id: Mapped[str | None] = mapped_column(String(200))
    element_name: Mapped[str | None] = mapped_column(String(500))
    line: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution: Mapped[str | None] = mapped_column(String(40))


class ConnectionRow(Base):
    """An OAuth2 client and its token; secret columns hold ciphertext only."""

    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    provider: Mapped[str] = mapped_column(String(40))
    client_id: Mapped[str] = mapped_column(String(500))
    client_secret: Mapped[str] = mapped_column(Text)  # encrypted
    scopes: Mapped[list[str]] = mapped_column(JSONType())
    auth_url: Mapped[str] = mapped_column(String(1000))
    token_url: Mapped[str] = mapped_column(String(1000))
    api_url: Mapped[str] = mapped_column(String(1000))
    token: Mapped[str | None] = mapped_column(Text)  # encrypted JSON: access, refresh, expiry
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # new | authorized | broken
    status: Mapped[str] = mapped_column(String(20), default="new")
    status_message: Mapped[str | None] = mapped_column(Text)
    # Bumped by every token change: one refresh at a time across threads and processes.
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiTokenRow(Base):
    """An API token: only its SHA-256 is kept; the token itself is shown once, at creation."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # the first characters, to tell tokens apart
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RateBucketRow(Base):
    """A token bucket of the outbound rate limit, shared by every process of a
    PostgreSQL store: Celery workers on several machines keep one limit together."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)  # the database's clock, epoch seconds


class ConsentRow(Base):
    """An OAuth consent under way: kept in the database, so the provider's answer may
    reach any API process (a stand-by, or the same one restarted). Only the state's
    SHA-256 is kept: whoever reads the table cannot answer in a person's place."""

    __tablename__ = "consents"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    connection: Mapped[str] = mapped_column(String(100))
    redirect_uri: Mapped[str] = mapped_column(String(1000))
    started_by: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
