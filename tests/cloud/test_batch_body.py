"""The batch upload's body parser: its fast path (msgspec) never decides differently from the
pydantic model that defines the body."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ecommunity.cloud.api.batch_body import (
    MAX_BATCH_READINGS,
    FastReading,
    ReadingBatch,
    parse_reading_batch,
)

FIELDS = (
    "meter_serial",
    "profile",
    "measured_at",
    "energy_import_wh",
    "energy_export_wh",
    "power_import_w",
    "power_export_w",
)
JSON = "application/json"


def values(reading: Any) -> tuple[Any, ...]:
    """A reading's fields, its instant with its offset (equal instants in other offsets are
    different inputs)."""
    at: datetime = reading.measured_at
    return (
        at,
        at.utcoffset(),
        *(getattr(reading, name) for name in FIELDS if name != "measured_at"),
    )


def check_same_as_pydantic(body: bytes) -> list[Any]:
    """Parse ``body`` both ways; they must accept the same and give the same values."""
    try:
        expected = ReadingBatch.model_validate_json(body).readings
    except ValidationError:
        with pytest.raises(RequestValidationError):
            parse_reading_batch(JSON, body)
        return []
    readings = list(parse_reading_batch(JSON, body))
    assert [values(r) for r in readings] == [values(r) for r in expected]
    return readings


# --- generated bodies ---------------------------------------------------------------------------


OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))


@st.composite
def valid_timestamps(draw: st.DrawFn) -> str:
    """Aware instants written as RFC 3339 allows: either separator or case, a fraction of any
    length, ``Z`` or an offset."""
    at = draw(st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=OFFSETS))
    text = at.isoformat(sep=draw(st.sampled_from("Tt ")))
    if draw(st.booleans()):
        digits = draw(st.from_regex(r"[0-9]{1,9}", fullmatch=True))
        text = text[:19] + "." + digits + text[-6:] if "." not in text else text
    if text.endswith("+00:00") and draw(st.booleans()):
        text = text[:-6] + draw(st.sampled_from("Zz"))
    return text


@st.composite
def near_misses(draw: st.DrawFn) -> str:
    """Strings that look like time stamps: fields out of range, odd separators and offsets."""
    year = draw(st.integers(0, 10000))
    month, day = draw(st.integers(0, 13)), draw(st.integers(0, 32))
    hour, minute, second = (
        draw(st.integers(0, 25)),
        draw(st.integers(0, 61)),
        draw(st.integers(0, 61)),
    )
    separator = draw(st.sampled_from(["T", "t", " ", "_", ""]))
    fraction = draw(st.one_of(st.just(""), st.from_regex(r"[.,][0-9]{0,12}", fullmatch=True)))
    offset = draw(
        st.one_of(
            st.sampled_from(["Z", "z", "", "+00:00", "-00:00", "+24:00", "+0100", "+01"]),
            st.builds(
                "{}{:02d}:{:02d}".format,
                st.sampled_from("+-"),
                st.integers(0, 25),
                st.integers(0, 61),
            ),
        )
    )
    return (
        f"{year:04d}-{month:02d}-{day:02d}{separator}"
        f"{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"
    )


def mostly(valid: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` nine times in ten: a batch of a few readings is then often valid as a whole."""
    return st.integers(0, 9).flatmap(lambda n: odd if n == 0 else valid)


TIMES = mostly(valid_timestamps(), st.one_of(near_misses(), st.integers(0, 2 * 10**9), st.none()))
NUMBERS = mostly(
    st.one_of(st.none(), st.integers(0, 10**9)),
    st.one_of(
        st.integers(-(10**3), 10**16),
        st.integers(10**15 - 5, 10**15 + 5),
        st.integers(10**9 - 5, 10**9 + 5),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.text(alphabet="0123456789-.e", max_size=6),
    ),
)
TEXTS = mostly(
    st.one_of(st.text(max_size=64), st.sampled_from(["", "1KFM0200012345", "amis"])),
    st.one_of(st.text(min_size=60, max_size=70), st.integers(), st.none()),
)


@st.composite
def readings(draw: st.DrawFn) -> dict[str, Any]:
    reading: dict[str, Any] = {"measured_at": draw(TIMES)}
    for name in ("meter_serial", "profile"):
        if draw(st.booleans()):
            reading[name] = draw(TEXTS)
    for name in ("energy_import_wh", "energy_export_wh", "power_import_w", "power_export_w"):
        if draw(st.booleans()):
            reading[name] = draw(NUMBERS)
    if draw(st.integers(0, 30)) == 0:
        reading["unknown"] = 1
    if draw(st.integers(0, 30)) == 0:
        del reading["measured_at"]
    return reading


@settings(max_examples=400, deadline=None)
@given(
    batch=st.lists(readings(), max_size=3),
    ensure_ascii=st.booleans(),
    extra=st.integers(0, 30).map(lambda n: n == 0),
)
@example(
    batch=[{"measured_at": "2024-06-15T10:00:00.9999999+00:00"}], ensure_ascii=True, extra=False
)
@example(batch=[{"measured_at": "2024-06-15T10:00:00.1234567Z"}], ensure_ascii=True, extra=False)
@example(
    batch=[{"measured_at": "2024-06-15T10:00:00Z", "energy_import_wh": "5"}],
    ensure_ascii=True,
    extra=False,
)
def test_fast_path_decides_as_pydantic_does(
    batch: list[dict[str, Any]], ensure_ascii: bool, extra: bool
) -> None:
    document: dict[str, Any] = {"readings": batch}
    if extra:
        document["more"] = True
    check_same_as_pydantic(json.dumps(document, ensure_ascii=ensure_ascii).encode())


# --- cases chosen by hand -----------------------------------------------------------------------


def body(*readings: dict[str, Any]) -> bytes:
    return json.dumps({"readings": list(readings)}).encode()


def test_a_well_formed_upload_takes_the_fast_path() -> None:
    at = datetime(2024, 6, 15, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    reading = {
        "meter_serial": "1KFM0200012345",
        "profile": "amis",
        "measured_at": at.isoformat(),
        "energy_import_wh": 10**15,
        "energy_export_wh": 0,
        "power_import_w": 10**9,
        "power_export_w": None,
    }
    parsed = check_same_as_pydantic(
        body(reading, {**reading, "measured_at": "2024-06-15T08:00:00.5Z"})
    )
    assert all(isinstance(r, FastReading) for r in parsed)
    assert parsed[0].measured_at == at
    assert parsed[1].measured_at == datetime(2024, 6, 15, 8, 0, 0, 500000, tzinfo=UTC)


@pytest.mark.parametrize(
    "measured_at",
    [
        "2024-06-15T10:00:00.9999999+00:00",  # msgspec rounds into the next second
        "2024-06-15T10:00:00.1234565Z",
        "2024-06-15T10:00:00.\\u0039999999Z",  # the same, with a digit as an escape
    ],
)
def test_fractions_below_a_microsecond_are_cut_off_as_pydantic_does(measured_at: str) -> None:
    content = b'{"readings": [{"measured_at": "' + measured_at.encode() + b'"}]}'
    parsed = check_same_as_pydantic(content)
    assert parsed[0].measured_at.second == 0
    assert not isinstance(parsed[0], FastReading)


def test_what_only_pydantic_accepts_is_accepted() -> None:
    lax = {"measured_at": 1718445600, "energy_import_wh": "5", "power_import_w": 7.0}
    [reading] = check_same_as_pydantic(body(lax))
    assert (reading.measured_at, reading.energy_import_wh, reading.power_import_w) == (
        datetime(2024, 6, 15, 10, 0, tzinfo=UTC),
        5,
        7,
    )


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"null",
        b'{"readings": []}',
        b'{"readings": [{"measured_at": "2024-06-15T10:00:00"}]}',
        b'{"readings": [{"measured_at": "2024-06-15T10:00:00Z", "energy_import_wh": -1}]}',
        b'{"readings": [{"measured_at": "2024-06-15T10:00:00Z", "meter_serial": "\\ud800"}]}',
        b'{"readings": [{"measured_at": "2024-06-15T10:00:00Z"}], "extra": 1}',
        json.dumps({"readings": [{"measured_at": "2024-06-15T10:00:00Z"}] * 5001}).encode(),
    ],
)
def test_refusals_are_pydantics(content: bytes) -> None:
    with pytest.raises(RequestValidationError) as refused:
        parse_reading_batch(JSON, content)
    try:
        ReadingBatch.model_validate_json(content)
    except ValidationError as exc:
        expected = exc.errors(include_url=False, include_input=False)
    else:
        pytest.fail("pydantic accepts it")
    assert [error["loc"] for error in refused.value.errors()] == [
        ("body", *error["loc"]) for error in expected
    ]
    assert MAX_BATCH_READINGS == 5000


def test_a_body_not_declared_as_json_is_refused() -> None:
    content = body({"measured_at": "2024-06-15T10:00:00Z"})
    for refused in ("text/plain", "json", "application/xml"):
        with pytest.raises(RequestValidationError):
            parse_reading_batch(refused, content)
    for accepted in (None, "application/json; charset=utf-8", "application/vnd.x+json"):
        assert len(parse_reading_batch(accepted, content)) == 1
