"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, LargeBinary, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class JSONType(TypeDecorator[Any]):
    """JSON on SQLite, JSONB on PostgreSQL; changes are judged as JSON, not with ``==``.

    Python says ``1 == True`` and ``1 == 1.0``; SQLAlchemy's default comparison would
    therefore skip writing a change from 1 to true, silently.
    """

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())

    def compare_values(self, x: Any, y: Any) -> bool:
        return _canonical(x) == _canonical(y)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


# zlib streams start with 0x78; JSON and the texts stored here never start with "x".
_ZLIB_HEADER = 0x78
_PACK_FROM = 160  # shorter values are stored as they are: zlib would not win much


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


def pack(raw: bytes) -> bytes:
    return zlib.compress(raw, 6) if len(raw) >= _PACK_FROM else raw


def unpack(value: bytes | str) -> str:
    """Text from a packed column; also reads values stored before it was packed."""
    if isinstance(value, str):
        return value
    data = bytes(value)
    if data and data[0] == _ZLIB_HEADER:
        data = zlib.decompress(data)
    return data.decode()


class PackedText(TypeDecorator[str]):
    """Text stored zlib-compressed (large, rarely read: instance state).

    Serialised workflow state repeats its keys and ids many times; compressed, it
    takes a fifth of the room.
    """

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        # SQLite stores bytes as a BLOB whatever a column declares; the declared TEXT
        # is kept because changing it would rebuild the table, and rebuilding
        # ``instances`` would cascade-delete its steps and incidents.
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: str | None, dialect: Dialect) -> bytes | None:
        return None if value is None else pack(value.encode())

    def process_result_value(self, value: bytes | str | None, dialect: Dialect) -> str | None:
        return None if value is None else unpack(value)


class PackedJSON(TypeDecorator[Any]):
    """JSON stored zlib-compressed (step logs: kept for operators, never queried into)."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        return pack(_compact(value))

    def process_result_value(self, value: bytes | str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(unpack(value))

    def compare_values(self, x: Any, y: Any) -> bool:
        return _canonical(x) == _canonical(y)


class PackedJSONObject(JSONType):
    """A JSON object stored compressed, as a base64 JSON string, in a JSON column.

    For values that are always objects (an outbox event's record values): a string
    in the column is a packed object; objects stored as they are (before packing, or
    small ones) read as they are. The column stays JSON, so no table is rebuilt.
    """

    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        raw = _compact(value)
        if len(raw) < _PACK_FROM:
            return value
        return base64.b64encode(zlib.compress(raw, 6)).decode()

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, str):
            return json.loads(zlib.decompress(base64.b64decode(value)))
        return value


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always hands back timezone-aware datetimes (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)
