"""/api/v1 routes: accounts and login sessions (bearer token for API clients, cookie for the
web app); the account's own settings (display name, password)."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from ecommunity.cloud.actions import accounts
from ecommunity.cloud.deps import SESSION_COOKIE, Caller, CurrentCaller, DbSession, Settings
from ecommunity.cloud.settings import CloudSettings

logger = logging.getLogger(__name__)

router = APIRouter()

# Deliberately simple: one @, no spaces or control characters, a dot in the domain. The real
# check is whether mail arrives; a stricter pattern only rejects valid addresses.
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f.]+(\.[^@\s\x00-\x1f\x7f.]+)+")


def _normalise_email(value: str) -> str:
    return value.strip().lower()


def _valid_email(value: str) -> str:
    value = _normalise_email(value)
    if len(value) > 254 or not _EMAIL.fullmatch(value):
        raise ValueError("not a valid email address (expected name@domain.tld)")
    return value


def _as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


Email = Annotated[str, Field(max_length=320), AfterValidator(_valid_email)]
Password = Annotated[str, Field(min_length=10, max_length=1024)]
# No control characters: PostgreSQL refuses NUL in text, and a name is shown to other people.
DisplayName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]
UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    #: 10 to 1024 characters; the upper bound keeps hashing cheap.
    password: Password
    display_name: DisplayName


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Only bounded like the stored column and free of control characters (PostgreSQL refuses
    # NUL); a malformed address simply matches no account.
    email: Annotated[
        str,
        Field(min_length=1, max_length=254, pattern=r"^[^\x00-\x1f\x7f]+$"),
        AfterValidator(_normalise_email),
    ]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    display_name: str
    created_at: UtcDatetime


class LoginOut(BaseModel):
    access_token: str = Field(description="Send as 'Authorization: Bearer <token>'.")
    token_type: Literal["bearer"] = "bearer"
    expires_at: UtcDatetime
    csrf_token: str = Field(
        description="Echo in the X-CSRF-Token header on writes authenticated by the cookie."
    )
    user: UserPublic


class MeOut(UserPublic):
    csrf_token: str = Field(
        description="The session's CSRF token, so that a reloaded web app can get it again."
    )


class MeUpdate(BaseModel):
    """A change of the account's settings; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName | None = None


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: Annotated[str, Field(min_length=1, max_length=1024)]
    #: As at registration: 10 to 1024 characters.
    new_password: Password


class PasswordChanged(BaseModel):
    #: Other sessions (browsers, API clients) signed out by the change.
    revoked_sessions: int


class ErrorOut(BaseModel):
    detail: str
    code: str


_UNAUTHENTICATED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Not signed in"}
}


@router.post(
    "/auth/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserPublic,
    responses={409: {"model": ErrorOut, "description": "The email address is taken"}},
    tags=["auth"],
)
def register(body: UserCreate, db: DbSession) -> UserPublic:
    """Create an account. The email address is stored in lower case."""
    user = accounts.register(
        db, email=body.email, password=body.password, display_name=body.display_name
    )
    return UserPublic.model_validate(user)


@router.post(
    "/auth/login",
    response_model=LoginOut,
    responses={
        401: {"model": ErrorOut, "description": "Wrong email address or password"},
        429: {
            "model": ErrorOut,
            "description": "Too many failed logins for the account or from the address",
            "headers": {"Retry-After": {"description": "Seconds to wait. [s]"}},
        },
    },
    tags=["auth"],
)
def login(
    body: LoginIn, request: Request, response: Response, db: DbSession, settings: Settings
) -> LoginOut:
    """Open a session: returns a bearer token and sets the HttpOnly session cookie."""
    # The peer address, never X-Forwarded-For: a client can put anything in that header.
    address = (request.client.host if request.client else "unknown")[:64]
    # A LoginThrottledError becomes a 429 with Retry-After in the shared error handler.
    new = accounts.log_in(
        db,
        email=body.email,
        password=body.password,
        address=address,
        limits=accounts.LoginLimits(settings.login_attempts, settings.login_window_s),
        session_ttl_s=settings.session_ttl_s,
    )
    _set_session_cookie(response, new.token, settings)
    return LoginOut(
        access_token=new.token,
        expires_at=new.session.expires_at,
        csrf_token=new.session.csrf_token,
        user=UserPublic.model_validate(new.user),
    )


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={
        **_UNAUTHENTICATED,
        403: {"model": ErrorOut, "description": "Cookie write without X-CSRF-Token"},
    },
    tags=["auth"],
)
def logout(caller: CurrentCaller, db: DbSession, settings: Settings) -> Response:
    """Revoke the session used (bearer token or cookie) and clear the cookie."""
    accounts.log_out(db, caller.session)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/me", response_model=MeOut, responses=_UNAUTHENTICATED, tags=["auth"])
def me(caller: CurrentCaller) -> MeOut:
    """The signed-in user, and the session's CSRF token."""
    return _me(caller)


def _me(caller: Caller) -> MeOut:
    return MeOut(
        id=caller.user.id,
        email=caller.user.email,
        display_name=caller.user.display_name,
        created_at=caller.user.created_at,
        csrf_token=caller.session.csrf_token,
    )


@router.patch(
    "/me",
    response_model=MeOut,
    responses={
        **_UNAUTHENTICATED,
        403: {"model": ErrorOut, "description": "Cookie write without X-CSRF-Token"},
    },
    tags=["auth"],
)
def change_me(body: MeUpdate, caller: CurrentCaller, db: DbSession) -> MeOut:
    """Change your display name (what operators and other members see)."""
    if body.display_name is not None:
        accounts.rename(db, caller.user, body.display_name)
    return _me(caller)


@router.post(
    "/me/password",
    response_model=PasswordChanged,
    responses={
        **_UNAUTHENTICATED,
        400: {"model": ErrorOut, "description": "The current password is wrong"},
        403: {"model": ErrorOut, "description": "Cookie write without X-CSRF-Token"},
        429: {
            "model": ErrorOut,
            "description": "Too many failed attempts for the account or from the address",
            "headers": {"Retry-After": {"description": "Seconds to wait. [s]"}},
        },
    },
    tags=["auth"],
)
def change_password(
    body: PasswordChange,
    request: Request,
    caller: CurrentCaller,
    db: DbSession,
    settings: Settings,
) -> PasswordChanged:
    """Set a new password, confirmed with the current one. Every other session of the account
    is signed out; this one stays. A wrong current password counts as a failed login."""
    revoked = accounts.change_password(
        db,
        caller.user,
        caller.session,
        current_password=body.current_password,
        new_password=body.new_password,
        address=(request.client.host if request.client else "unknown")[:64],
        limits=accounts.LoginLimits(settings.login_attempts, settings.login_window_s),
    )
    return PasswordChanged(revoked_sessions=revoked)


def _set_session_cookie(response: Response, token: str, settings: CloudSettings) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_ttl_s,
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )
