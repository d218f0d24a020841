"""FastAPI dependencies: the database session, the signed-in user, the calling gateway."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from ecommunity.cloud.db.devices import find_device_by_token_hash, find_live_device_id
from ecommunity.cloud.db.models import Device, User, UserSession
from ecommunity.cloud.db.users import find_session_by_token_hash
from ecommunity.cloud.errors import ForbiddenError, NotAuthenticatedError
from ecommunity.cloud.security import same, token_hash
from ecommunity.cloud.settings import CloudSettings

SESSION_COOKIE = "ecommunity_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_settings(request: Request) -> CloudSettings:
    settings: CloudSettings = request.app.state.settings
    return settings


def get_db(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


DbSession = Annotated[Session, Depends(get_db)]
Settings = Annotated[CloudSettings, Depends(get_settings)]


def bearer_token(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticatedError("Authorization header must be 'Bearer <token>'")
    return token.strip()


@dataclass(frozen=True)
class Caller:
    """The signed-in user of a request and the session they used."""

    user: User
    session: UserSession
    via_cookie: bool


def find_login(db: Session, token: str) -> UserSession | None:
    """The live session a token belongs to, if any."""
    login = find_session_by_token_hash(db, token_hash(token))
    if login is None or login.revoked_at is not None:
        return None
    if login.expires_at.replace(tzinfo=login.expires_at.tzinfo or UTC) <= datetime.now(UTC):
        return None
    return login


def current_caller(request: Request, db: DbSession) -> Caller:
    """The user, from a bearer token or the session cookie.

    Cookie-authenticated writes must echo the session's CSRF token in ``X-CSRF-Token``:
    a cross-site form cannot read it, so it cannot forge the write.
    """
    token = bearer_token(request.headers.get("authorization"))
    via_cookie = token is None
    if token is None:
        token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise NotAuthenticatedError("sign in first (bearer token or session cookie)")
    login = find_login(db, token)
    if login is None:
        raise NotAuthenticatedError("the session is unknown, expired or signed out")
    if via_cookie and request.method not in _SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not same(sent, login.csrf_token):
            raise ForbiddenError(f"cookie-authenticated writes need the {CSRF_HEADER} header")
    user = db.get(User, login.user_id)
    if user is None:
        raise NotAuthenticatedError("the account no longer exists")
    return Caller(user=user, session=login, via_cookie=via_cookie)


CurrentCaller = Annotated[Caller, Depends(current_caller)]


def find_device(db: Session, token: str) -> Device | None:
    device = find_device_by_token_hash(db, token_hash(token))
    if device is None or device.revoked_at is not None:
        return None
    return device


def device_token_of(request: Request) -> str:
    """The device token a gateway sends (``Authorization: Bearer``), not yet checked."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise NotAuthenticatedError("gateways authenticate with 'Authorization: Bearer <token>'")
    return token


async def device_token(request: Request) -> str:
    """:func:`device_token_of` as a dependency that needs no worker thread (no database):
    for routes that look the device up in a worker thread of their own."""
    return device_token_of(request)


DeviceToken = Annotated[str, Depends(device_token)]


_UNKNOWN_DEVICE = "the device token is unknown or revoked"


def live_device_id(db: Session, token: str) -> int:
    """The id of the device of ``token`` (one cheap statement, no ORM object).

    :raises NotAuthenticatedError: the token is unknown or revoked.
    """
    device_id = find_live_device_id(db, token_hash(token))
    if device_id is None:
        raise NotAuthenticatedError(_UNKNOWN_DEVICE)
    return device_id


def current_device(request: Request, db: DbSession) -> Device:
    """The gateway calling with its device token (``Authorization: Bearer``)."""
    device = find_device(db, device_token_of(request))
    if device is None:
        raise NotAuthenticatedError(_UNKNOWN_DEVICE)
    return device


CurrentDevice = Annotated[Device, Depends(current_device)]
