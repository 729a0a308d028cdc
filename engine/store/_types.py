"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import functools
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
# A value packed against a dictionary (below) starts with this byte, then the
# dictionary's CRC-32 (so a wrong dictionary is refused, not misread), then a raw
# deflate stream. JSON and the texts stored here never start with a control byte.
_DICTIONARY_MARK = 0x01
_PACK_FROM = 160  # shorter values are stored as they are: zlib would not win much
# zlib looks back at most 32 KB: a longer dictionary would only waste its head.
DICTIONARY_BYTES = 32 * 1024


class DictionaryPacked(bytes):
    """A value packed against a process version's dictionary, as read from a column.

    Opening it needs that dictionary: ``unpack(value, dictionary)``.
    """


class DictionaryMismatch(ValueError):
    """A value packed against a dictionary was opened without it, or with another."""


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


def _fingerprint(dictionary: bytes) -> bytes:
    return zlib.crc32(dictionary).to_bytes(4, "big")


@functools.lru_cache(maxsize=8)
def _primed(dictionary: bytes) -> tuple[bytes, Any]:
    """What a value packed against ``dictionary`` starts with (mark and fingerprint),
    and a compressor with the dictionary set, copied for each value: setting a 32 KB
    dictionary up costs zlib about twice what packing a step-log value after it does.
    A version keeps its dictionary, so a few of these serve every version at work."""
    squeezer = zlib.compressobj(6, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, dictionary)
    return bytes([_DICTIONARY_MARK]) + _fingerprint(dictionary), squeezer


def pack(raw: bytes, dictionary: bytes | None = None) -> bytes:
    """``raw`` compressed; against ``dictionary`` if one is given.

    Step logs and instance states of one process version repeat the same keys,
    record fields and values from one instance to the next; compressed against an
    earlier instance's values (``learn_dictionary``) they take a fifth of the room
    plain zlib leaves them.
    """
    if dictionary:
        head, primed = _primed(dictionary)
        squeezer = primed.copy()
        packed = head + squeezer.compress(raw) + squeezer.flush()
        return packed if len(packed) < len(raw) else raw
    return zlib.compress(raw, 6) if len(raw) >= _PACK_FROM else raw


def pack_json(value: Any, dictionary: bytes | None = None) -> bytes:
    return pack(_compact(value), dictionary)


def unpack(value: bytes | str, dictionary: bytes | None = None) -> str:
    """Text from a packed column; also reads values stored before it was packed.

    A value packed against a dictionary needs that dictionary; without it, or with
    another, this raises ``DictionaryMismatch``.
    """
    if isinstance(value, str):
        return value
    data = bytes(value)
    if data and data[0] == _DICTIONARY_MARK:
        if not dictionary or data[1:5] != _fingerprint(dictionary):
            raise DictionaryMismatch(
                "this value was packed against a process version's dictionary, and "
                + ("none was given" if not dictionary else "another one was given")
            )
        opener = zlib.decompressobj(-15, dictionary)
        data = opener.decompress(data[5:]) + opener.flush()
    elif data and data[0] == _ZLIB_HEADER:
        data = zlib.decompress(data)
    return data.decode()


def unpack_json(value: Any, dictionary: bytes | None = None) -> Any:
    """A packed JSON column's value as read: already decoded, or still to open."""
    if isinstance(value, DictionaryPacked):
        return json.loads(unpack(value, dictionary))
    return value


def learn_dictionary(samples: list[Any]) -> bytes:
    """A dictionary from one instance's values (state texts, step-log values as JSON),
    for the next ones.

    zlib finds matches nearest the dictionary's end most cheaply, so the samples
    are given most typical last; only the last ``DICTIONARY_BYTES`` are kept.
    """
    parts = [s.encode() if isinstance(s, str) else _compact(s) for s in samples]
    return b"".join(parts)[-DICTIONARY_BYTES:]


def _read_packed(value: bytes | str) -> str | DictionaryPacked:
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        if data[:1] == bytes([_DICTIONARY_MARK]):
            return DictionaryPacked(data)
    return unpack(value)


class PackedText(TypeDecorator[str | bytes]):
    """Text stored zlib-compressed (large, rarely read: instance state).

    Serialised workflow state repeats its keys and ids many times; compressed, it
    takes a fifth of the room. Bytes given are taken as packed already (``pack``
    with a dictionary); a value packed so reads back as ``DictionaryPacked``.
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

    def process_bind_param(self, value: str | bytes | None, dialect: Dialect) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        return pack(value.encode())

    def process_result_value(
        self, value: bytes | str | None, dialect: Dialect
    ) -> str | DictionaryPacked | None:
        return None if value is None else _read_packed(value)


class PackedJSON(TypeDecorator[Any]):
    """JSON stored zlib-compressed (step logs: kept for operators, never queried into).

    Bytes given are taken as packed already (``pack_json`` with a dictionary); a
    value packed so reads back as ``DictionaryPacked``, for ``unpack_json``.
    """

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        return pack(_compact(value))

    def process_result_value(self, value: bytes | str | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        opened = _read_packed(value)
        return opened if isinstance(opened, DictionaryPacked) else json.loads(opened)

    def compare_values(self, x: Any, y: Any) -> bool:
        return _canonical(x) == _canonical(y)


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
