"""The body of a batch upload (``POST /api/v1/gateway/readings``): parsed and validated in one
pass, refused as FastAPI refuses a body (422, ``loc`` starting with ``body``).

:class:`ReadingBatch` (pydantic) defines the body: the OpenAPI schema, what is accepted and
how a refusal reads. A well-formed upload takes a fast path first, msgspec's decoder into
twins of the models with the same fields, defaults and bounds: six times cheaper than
pydantic, which was the largest share of an upload's CPU time (``bench/cloud.py``). Whatever
that decoder does not take goes to pydantic, which decides: the fast path only ever accepts
bodies that pydantic accepts too, with the same values (``tests/cloud/test_batch_body.py``
checks that on generated bodies).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

import msgspec
from fastapi.exceptions import RequestValidationError
from msgspec import Meta
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ecommunity.cloud.schemas import ReadingFields, ReadingIn

#: Readings per batch upload: a day of minute readings is 1,440.
MAX_BATCH_READINGS = 5000


class ReadingBatch(BaseModel):
    """Readings a gateway uploads in one request, e.g. what it stored while offline."""

    model_config = ConfigDict(extra="forbid")

    readings: list[ReadingIn] = Field(min_length=1, max_length=MAX_BATCH_READINGS)


_EnergyWh = Annotated[int, Meta(ge=0, le=10**15)]
_PowerW = Annotated[int, Meta(ge=0, le=10**9)]
_Text = Annotated[str, Meta(max_length=64)]


class FastReading(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """:class:`~ecommunity.cloud.schemas.ReadingIn` for the fast path (keep the two alike)."""

    measured_at: Annotated[datetime, Meta(tz=True)]
    meter_serial: _Text = ""
    profile: _Text = ""
    energy_import_wh: _EnergyWh | None = None
    energy_export_wh: _EnergyWh | None = None
    power_import_w: _PowerW | None = None
    power_export_w: _PowerW | None = None


class FastReadingBatch(msgspec.Struct, forbid_unknown_fields=True):
    """:class:`ReadingBatch` for the fast path."""

    readings: Annotated[list[FastReading], Meta(min_length=1, max_length=MAX_BATCH_READINGS)]


_fast_decoder = msgspec.json.Decoder(FastReadingBatch)
#: More than six digits after a dot: msgspec rounds a time stamp's fraction of a microsecond,
#: pydantic cuts it off.
_SUBMICROSECOND = re.compile(rb"\.[0-9]{7}")


def _fast_path_may_take(body: bytes) -> bool:
    """Whether the fast decoder's result would be pydantic's too. A backslash may escape the
    digits of a time stamp, which the check for sub-microsecond digits cannot see; real
    uploads have neither (a reading's texts are ASCII)."""
    if b"\\" in body:
        return False
    return b"." not in body or _SUBMICROSECOND.search(body) is None


def _check_json(content_type: str | None) -> None:
    # As FastAPI does: JSON, declared as such or not declared at all.
    media_type = (content_type or "application/json").partition(";")[0]
    main_type, _, subtype = media_type.strip().lower().partition("/")
    if main_type != "application" or not (subtype == "json" or subtype.endswith("+json")):
        raise RequestValidationError(
            [{"loc": ("body",), "msg": "send the readings as JSON", "type": "content_type"}]
        )


def parse_reading_batch(content_type: str | None, body: bytes) -> Sequence[ReadingFields]:
    """The readings of an upload body.

    Parsed straight from the JSON into the models, by msgspec or by pydantic (see above):
    FastAPI would decode the JSON into Python objects first and validate those, twice the
    work.

    :raises RequestValidationError: not JSON, or not a valid :class:`ReadingBatch`.
    """
    _check_json(content_type)
    if _fast_path_may_take(body):
        try:
            return _fast_decoder.decode(body).readings
        except msgspec.MsgspecError:
            pass  # pydantic decides (it accepts more: numbers in strings, say) and explains
    try:
        return ReadingBatch.model_validate_json(body).readings
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in errors]
        ) from None
