"""Packed values: plain zlib, or zlib against a process version's learned dictionary."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine.store import (
    DictionaryMismatch,
    DictionaryPacked,
    learn_dictionary,
    pack,
    pack_json,
    unpack,
    unpack_json,
)
from engine.store._types import PackedJSON, PackedText

MEETING = {
    "title": "Weekly planning",
    "starts_at": "2030-01-01T10:00:00+00:00",
    "participants": [1, 2, 3],
    "attendees": ["ann@example.com", "bob@example.com"],
}


def _similar(n: int) -> dict[str, object]:
    return {**MEETING, "title": f"Meeting {n}", "participants": [n, n + 1]}


def test_a_dictionary_learned_from_one_value_packs_the_next_far_smaller() -> None:
    dictionary = learn_dictionary([_similar(1), json.dumps({"note": "x"})])
    later = json.dumps(_similar(2)).encode()
    plain, packed = pack(later), pack(later, dictionary)
    assert len(packed) * 2 < len(plain)
    assert unpack(packed, dictionary) == later.decode()


def test_a_value_packed_against_a_dictionary_is_refused_without_it_or_with_another() -> None:
    dictionary = learn_dictionary([_similar(1)])
    packed = pack(json.dumps(_similar(2)).encode(), dictionary)
    with pytest.raises(DictionaryMismatch, match="none was given"):
        unpack(packed)
    with pytest.raises(DictionaryMismatch, match="another one"):
        unpack(packed, learn_dictionary([_similar(9), "other"]))


def test_values_packed_before_dictionaries_read_as_before_with_or_without_one() -> None:
    dictionary = learn_dictionary([_similar(1)])
    text = json.dumps(_similar(3))
    for stored in (text, text.encode(), pack(text.encode())):
        assert unpack(stored) == unpack(stored, dictionary) == text


def test_a_dictionary_keeps_the_last_32_kb_of_its_samples() -> None:
    dictionary = learn_dictionary(["a" * 40_000, "the end"])
    assert len(dictionary) == 32 * 1024 and dictionary.endswith(b"the end")


def test_the_column_types_pass_packed_bytes_through_and_hand_them_back_unopened() -> None:
    dictionary = learn_dictionary([_similar(1)])
    packed = pack_json(_similar(2), dictionary)
    column = PackedJSON()
    assert column.process_bind_param(packed, dialect=None) is packed  # type: ignore[arg-type]
    read = column.process_result_value(packed, dialect=None)  # type: ignore[arg-type]
    assert isinstance(read, DictionaryPacked)
    assert unpack_json(read, dictionary) == _similar(2)
    assert column.process_result_value(pack_json(MEETING), None) == MEETING  # type: ignore[arg-type]
    text = PackedText()
    state = pack(b'{"x": 1}' * 40, dictionary)
    assert isinstance(text.process_result_value(state, None), DictionaryPacked)  # type: ignore[arg-type]
    assert text.process_result_value(pack(b'{"x": 1}' * 40), None) == '{"x": 1}' * 40  # type: ignore[arg-type]


def test_packing_one_value_never_depends_on_the_values_packed_before_it() -> None:
    # Workers pack step logs of many versions at once from several threads; each
    # value must open with its own dictionary alone, and pack the same every time.
    first, second = learn_dictionary([_similar(1)]), learn_dictionary([_similar(50), "x"])
    values = [json.dumps(_similar(n)).encode() for n in range(2, 40)]
    alone = {(v, d): pack(v, d) for v in values for d in (first, second)}

    def pack_all(_: int) -> list[tuple[bytes, bytes, bytes]]:
        return [(v, d, pack(v, d)) for v in values for d in (second, first)]

    with ThreadPoolExecutor(4) as pool:
        for batch in pool.map(pack_all, range(8)):
            for value, dictionary, packed in batch:
                assert packed == alone[(value, dictionary)]
                assert unpack(packed, dictionary) == value.decode()
