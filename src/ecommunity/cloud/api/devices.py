"""/api/v1 routes: pairing gateways (OAuth 2.0 Device Authorization Grant, RFC 8628) and the
user's list of paired gateways.

``/devices/code`` and ``/devices/token`` are what the gateway calls. They take JSON, and also
``application/x-www-form-urlencoded`` as RFC 8628 has it, parsed here because python-multipart is
not a dependency. ``/devices/token`` answers errors in OAuth's format (RFC 6749 §5.2), not ours.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import parse_qs

from fastapi import APIRouter, Path, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from starlette.concurrency import run_in_threadpool

from ecommunity.cloud.actions import devices as pairing
from ecommunity.cloud.api.auth import ErrorOut
from ecommunity.cloud.db.devices import list_devices_of_user
from ecommunity.cloud.db.models import Device
from ecommunity.cloud.deps import CurrentCaller, DbSession, Settings
from ecommunity.cloud.errors import CloudError

logger = logging.getLogger(__name__)

router = APIRouter(tags=["devices"])

_Model = TypeVar("_Model", bound=BaseModel)

#: A gateway that delivered data this recently counts as online. [s]
ONLINE_WITHIN_S = 150
#: RFC 6749 §5.1: token responses, errors included, must not be cached.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_FORM = "application/x-www-form-urlencoded"


def _as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


UserCode = Annotated[
    str,
    Field(max_length=32, examples=["WDJB-MJHT"]),
    AfterValidator(pairing.normalise_user_code),
]
DeviceName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class DeviceCodeRequest(BaseModel):
    """RFC 8628 §3.1 device authorization request."""

    model_config = ConfigDict(extra="forbid")

    hardware_id: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="The gateway's own stable id (e.g. the board's serial number).",
    )


class DeviceCodeOut(BaseModel):
    """RFC 8628 §3.2 device authorization response."""

    device_code: str = Field(description="Secret: the gateway polls /devices/token with it.")
    user_code: str = Field(description="What the user types in, as XXXX-XXXX.")
    verification_uri: str
    verification_uri_complete: str
    expires_in: int = Field(description="Lifetime of both codes. [s]")
    interval: int = Field(description="Wait at least this long between polls. [s]")


class DeviceTokenRequest(BaseModel):
    """RFC 8628 §3.4 device access token request."""

    model_config = ConfigDict(extra="forbid")

    grant_type: str = Field(max_length=256, examples=[pairing.GRANT_TYPE])
    device_code: str = Field(min_length=1, max_length=256)


class DeviceTokenOut(BaseModel):
    access_token: str = Field(description="The device token: 'Authorization: Bearer <token>'.")
    token_type: Literal["bearer"] = "bearer"
    device_id: int


class OAuthErrorOut(BaseModel):
    """RFC 6749 §5.2 / RFC 8628 §3.5 error response."""

    error: pairing.GrantErrorCode
    error_description: str


class DeviceActivate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_code: UserCode = Field(description="As the gateway shows it; case and dash are ignored.")
    name: DeviceName = Field(description="How the device is listed, e.g. 'Basement'.")


class DeviceDeny(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_code: UserCode


class DevicePublic(BaseModel):
    id: int
    name: str
    hardware_id: str
    created_at: UtcDatetime
    last_seen_at: UtcDatetime | None = Field(description="When the cloud last received its data.")
    revoked: bool
    online: bool = Field(
        description=f"It delivered data in the last {ONLINE_WITHIN_S} s (a gateway uploads a "
        "minute reading every minute); never for a revoked one."
    )

    @classmethod
    def of(cls, device: Device, now: datetime | None = None) -> DevicePublic:
        now = now or datetime.now(UTC)
        last_seen = None if device.last_seen_at is None else _as_utc(device.last_seen_at)
        revoked = device.revoked_at is not None
        return cls(
            id=device.id,
            name=device.name,
            hardware_id=device.hardware_id,
            created_at=device.created_at,
            last_seen_at=last_seen,
            revoked=revoked,
            online=not revoked
            and last_seen is not None
            and now - last_seen <= timedelta(seconds=ONLINE_WITHIN_S),
        )


class UnsupportedMediaTypeError(CloudError):
    status = 415
    code = "unsupported_media_type"


class _FormError(ValueError):
    """A form body that cannot be read, or that repeats a parameter."""


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    # The routes below read their bodies themselves (JSON or form), so FastAPI cannot infer this.
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}, _FORM: {"schema": schema}},
        }
    }


async def _read_body(request: Request, model: type[_Model]) -> _Model:
    """The body as ``model``, from JSON (also when no content type is given) or a form.

    In a form, unknown parameters are ignored and empty ones count as absent, as RFC 6749 §3.2
    requires of OAuth endpoints; JSON bodies refuse unknown fields like the rest of the API.

    Raises:
        UnsupportedMediaTypeError: neither JSON nor a form.
        _FormError: an unreadable form, or a parameter given twice.
        ValidationError: the fields are wrong.
    """
    media_type = request.headers.get("content-type", "application/json")
    media_type = media_type.partition(";")[0].strip().lower()
    body = await request.body()
    if media_type == _FORM:
        return model.model_validate(_parse_form(body, model))
    if media_type == "application/json" or media_type.endswith("+json"):
        return model.model_validate_json(body)
    raise UnsupportedMediaTypeError(f"send application/json or {_FORM}, not {media_type!r}")


def _parse_form(body: bytes, model: type[BaseModel]) -> dict[str, str]:
    try:
        fields = parse_qs(body.decode("ascii"), errors="strict", max_num_fields=50)
    except ValueError as exc:  # UnicodeError is a ValueError too
        raise _FormError(f"unreadable form body: {exc}") from None
    values: dict[str, str] = {}
    for name in model.model_fields:
        given = fields.get(name, [])
        if len(given) > 1:
            raise _FormError(f"the parameter {name!r} is given more than once")
        if given:
            values[name] = given[0]
    return values


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors(include_url=False)
    )


def _oauth_error(error: pairing.GrantErrorCode, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=400, headers=_NO_STORE
    )


@router.post(
    "/devices/code",
    response_model=DeviceCodeOut,
    openapi_extra=_body_schema(DeviceCodeRequest),
    responses={
        400: {"model": ErrorOut, "description": "Unreadable form body"},
        415: {"model": ErrorOut, "description": "Neither JSON nor a form"},
    },
)
async def request_device_code(request: Request, db: DbSession, settings: Settings) -> JSONResponse:
    """RFC 8628 §3.1: a gateway asks to be paired. No authentication: the gateway has none yet.

    Show ``user_code`` to the user, then poll ``/devices/token`` every ``interval`` seconds.
    """
    try:
        body = await _read_body(request, DeviceCodeRequest)
    except _FormError as exc:
        raise CloudError(str(exc)) from None
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        raise RequestValidationError(
            # The input of a JSON error is the raw body: not always text, so it is left out.
            [
                {key: value for key, value in error.items() if key != "input"}
                | {"loc": ("body", *error["loc"])}
                for error in errors
            ]
        ) from None
    new = await run_in_threadpool(
        pairing.start_authorization,
        db,
        hardware_id=body.hardware_id,
        ttl_s=settings.device_code_ttl_s,
        interval_s=settings.device_poll_interval_s,
    )
    user_code = pairing.format_user_code(new.user_code)
    verification_uri = settings.public_url.rstrip("/") + "/pair"
    out = DeviceCodeOut(
        device_code=new.device_code,
        user_code=user_code,
        verification_uri=verification_uri,
        verification_uri_complete=f"{verification_uri}?code={user_code}",
        expires_in=new.expires_in_s,
        interval=new.interval_s,
    )
    return JSONResponse(out.model_dump(), headers=_NO_STORE)


@router.post(
    "/devices/token",
    response_model=DeviceTokenOut,
    openapi_extra=_body_schema(DeviceTokenRequest),
    responses={
        400: {
            "model": OAuthErrorOut,
            "description": "Not (yet) a token: authorization_pending, slow_down, access_denied, "
            "expired_token, invalid_grant, unsupported_grant_type or invalid_request",
        }
    },
)
async def exchange_device_code(request: Request, db: DbSession) -> JSONResponse:
    """RFC 8628 §3.4: the gateway polls for its device token.

    Errors come as HTTP 400 ``{"error", "error_description"}`` (RFC 8628 §3.5). On
    ``slow_down``, wait 5 seconds longer between polls from then on.
    """
    try:
        body = await _read_body(request, DeviceTokenRequest)
    except (_FormError, UnsupportedMediaTypeError) as exc:
        return _oauth_error("invalid_request", str(exc))
    except ValidationError as exc:
        return _oauth_error("invalid_request", _describe(exc))
    if body.grant_type != pairing.GRANT_TYPE:
        return _oauth_error(
            "unsupported_grant_type", f"this endpoint takes grant_type={pairing.GRANT_TYPE}"
        )
    try:
        issued = await run_in_threadpool(pairing.exchange_device_code, db, body.device_code)
    except pairing.DeviceGrantError as exc:
        return _oauth_error(exc.error, exc.detail)
    out = DeviceTokenOut(access_token=issued.access_token, device_id=issued.device_id)
    return JSONResponse(out.model_dump(), headers=_NO_STORE)


_SIGNED_IN: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Not signed in"},
}
_CODE_ERRORS: dict[int | str, dict[str, Any]] = {
    **_SIGNED_IN,
    400: {"model": ErrorOut, "description": "The code expired or was already used"},
    403: {"model": ErrorOut, "description": "Cookie write without X-CSRF-Token"},
    404: {"model": ErrorOut, "description": "No gateway is waiting with this code"},
}


@router.post(
    "/devices/activate",
    status_code=status.HTTP_201_CREATED,
    response_model=DevicePublic,
    responses=_CODE_ERRORS,
)
def activate_device(body: DeviceActivate, caller: CurrentCaller, db: DbSession) -> DevicePublic:
    """Confirm the code a gateway shows: the gateway is paired to you under ``name`` and
    receives its device token with its next poll."""
    device = pairing.approve(db, caller.user, body.user_code, name=body.name)
    return DevicePublic.of(device)


@router.post(
    "/devices/deny",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=_CODE_ERRORS,
)
def deny_device(body: DeviceDeny, caller: CurrentCaller, db: DbSession) -> Response:
    """Refuse the code a gateway shows: its next poll hears ``access_denied``."""
    pairing.deny(db, caller.user, body.user_code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/devices", response_model=list[DevicePublic], responses=_SIGNED_IN)
def list_devices(caller: CurrentCaller, db: DbSession) -> list[DevicePublic]:
    """Your paired gateways, revoked ones included, oldest first."""
    return [DevicePublic.of(device) for device in list_devices_of_user(db, caller.user.id)]


@router.delete(
    "/devices/{device_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={
        **_SIGNED_IN,
        403: {"model": ErrorOut, "description": "Cookie write without X-CSRF-Token"},
        404: {"model": ErrorOut, "description": "You have no device with this id"},
    },
)
async def revoke_device(
    device_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    request: Request,
    caller: CurrentCaller,
    db: DbSession,
) -> Response:
    """Revoke one of your devices: its token stops working at once and its live connection is
    closed. Revoking it again changes nothing."""
    await run_in_threadpool(pairing.revoke, db, caller.user, device_id)
    # After the commit: the live hub (when this app has one) ends the gateway's open socket.
    live = getattr(request.app.state, "live", None)
    if live is not None:
        await live.device_revoked(device_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
