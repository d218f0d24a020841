"""Account actions: register, log in (rate-limited), log out, change the display name and the
password (which signs out every other session). Each runs one transaction."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ecommunity.cloud.db.models import LoginAttempt, User, UserSession
from ecommunity.cloud.db.users import (
    find_user_by_email,
    forget_failed_logins_before,
    recent_failed_logins_by_account,
    recent_failed_logins_by_address,
    revoke_sessions_of_user,
)
from ecommunity.cloud.errors import (
    CloudError,
    ConflictError,
    NotAuthenticatedError,
    TooManyRequestsError,
)
from ecommunity.cloud.security import hash_password, new_token, token_hash, verify_password

logger = logging.getLogger(__name__)

#: The one reason a failed login gives, whether the account exists or not.
WRONG_CREDENTIALS = "the email address or the password is wrong"


class LoginThrottledError(TooManyRequestsError):
    """Too many failed logins for the account or from the address; try again later."""

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        #: Seconds until the oldest counted failure leaves the window. [s]
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> Mapping[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class WrongPasswordError(CloudError):
    """The current password given to confirm a change is wrong.

    A 400, not a 401: the session itself is fine, and a 401 tells clients it ended.
    """

    code = "wrong_password"


@dataclass(frozen=True)
class LoginLimits:
    """At most ``attempts`` failed logins per account and per address in ``window_s``."""

    attempts: int
    window_s: int


@dataclass(frozen=True)
class NewLogin:
    """A fresh session. ``token`` is shown once: the database keeps only its hash."""

    user: User
    session: UserSession
    token: str


def register(db: Session, *, email: str, password: str, display_name: str) -> User:
    """Create an account. ``email`` must already be normalised (lower case).

    Raises:
        ConflictError: an account with this address exists.
    """
    if find_user_by_email(db, email) is not None:
        raise ConflictError("an account with this email address exists")
    user = User(
        email=email,
        display_name=display_name,
        password_hash=hash_password(password),
        created_at=datetime.now(UTC),
    )
    db.add(user)
    try:
        db.commit()
    except IntegrityError:
        # Two registrations of the same address raced past the check above.
        db.rollback()
        raise ConflictError("an account with this email address exists") from None
    logger.info("registered user %d", user.id)
    return user


def log_in(
    db: Session,
    *,
    email: str,
    password: str,
    address: str,
    limits: LoginLimits,
    session_ttl_s: int,
    now: datetime | None = None,
) -> NewLogin:
    """Check the password and open a session.

    Failed logins are stored in the database, so the limits hold across instances. Once a limit
    is reached, even the right password is refused until the window frees up: otherwise a
    guesser would learn from the answer which guess was right.

    Raises:
        LoginThrottledError: too many failed logins for ``email`` or from ``address``.
        NotAuthenticatedError: unknown account or wrong password (the same reason for both).
    """
    now = now or datetime.now(UTC)
    window = timedelta(seconds=limits.window_s)
    since = now - window
    by_account = recent_failed_logins_by_account(db, email, since=since, limit=limits.attempts)
    by_address = recent_failed_logins_by_address(db, address, since=since, limit=limits.attempts)
    retry_at = _allowed_again_at((by_account, by_address), limits)
    if retry_at is not None:
        # The warning was logged when the limit was reached; the refusals that follow are noise.
        logger.debug("login throttled for address %s", address)
        raise LoginThrottledError(
            "too many failed logins; try again later",
            retry_after_s=max(1, math.ceil((retry_at - now).total_seconds())),
        )
    user = find_user_by_email(db, email)
    if not verify_password(user.password_hash if user else None, password) or user is None:
        forget_failed_logins_before(db, since)
        db.add(LoginAttempt(email=email, address=address, attempted_at=now))
        db.commit()
        if len(by_account) + 1 == limits.attempts or len(by_address) + 1 == limits.attempts:
            logger.warning(
                "failed logins reached the limit (%d in %d s) for an account or from address %s",
                limits.attempts,
                limits.window_s,
                address,
            )
        raise NotAuthenticatedError(WRONG_CREDENTIALS)
    token = new_token()
    session = UserSession(
        user_id=user.id,
        token_hash=token_hash(token),
        csrf_token=new_token(),
        created_at=now,
        expires_at=now + timedelta(seconds=session_ttl_s),
    )
    db.add(session)
    db.commit()
    return NewLogin(user=user, session=session, token=token)


def log_out(db: Session, session: UserSession) -> None:
    """Revoke ``session``: its token and cookie stop working at once."""
    if session.revoked_at is None:
        session.revoked_at = datetime.now(UTC)
        db.commit()


def rename(db: Session, user: User, display_name: str) -> User:
    """Change ``user``'s display name (already stripped and checked)."""
    if user.display_name != display_name:
        user.display_name = display_name
        db.commit()
        logger.info("user %d changed their display name", user.id)
    return user


def change_password(
    db: Session,
    user: User,
    session: UserSession,
    *,
    current_password: str,
    new_password: str,
    address: str,
    limits: LoginLimits,
    now: datetime | None = None,
) -> int:
    """Set a new password after checking the current one; revoke every other session of
    ``user`` (other browsers and API clients signed in with the old password). Returns how
    many sessions were revoked.

    A wrong current password counts as a failed login for the account and the address, and the
    login limits apply: a stolen session cannot be used to guess the password faster than the
    login form allows.

    Raises:
        LoginThrottledError: too many failed attempts for the account or from ``address``.
        WrongPasswordError: ``current_password`` is wrong.
    """
    now = now or datetime.now(UTC)
    since = now - timedelta(seconds=limits.window_s)
    by_account = recent_failed_logins_by_account(db, user.email, since=since, limit=limits.attempts)
    by_address = recent_failed_logins_by_address(db, address, since=since, limit=limits.attempts)
    retry_at = _allowed_again_at((by_account, by_address), limits)
    if retry_at is not None:
        raise LoginThrottledError(
            "too many failed attempts; try again later",
            retry_after_s=max(1, math.ceil((retry_at - now).total_seconds())),
        )
    if not verify_password(user.password_hash, current_password):
        db.add(LoginAttempt(email=user.email, address=address, attempted_at=now))
        db.commit()
        raise WrongPasswordError("the current password is wrong")
    user.password_hash = hash_password(new_password)
    count = revoke_sessions_of_user(db, user.id, keep_session_id=session.id, now=now)
    db.commit()
    logger.info("user %d changed their password; %d other sessions revoked", user.id, count)
    return count


def _allowed_again_at(
    recent_failures: tuple[list[datetime], ...], limits: LoginLimits
) -> datetime | None:
    """When another login may be tried, given the newest failures per key (newest first), or
    None if it may be tried now."""
    window = timedelta(seconds=limits.window_s)
    retry_at: datetime | None = None
    for recent in recent_failures:
        if len(recent) >= limits.attempts:
            # The oldest of the newest `attempts` failures: once it leaves the window, one more
            # attempt is allowed.
            frees_at = _as_utc(recent[-1]) + window
            retry_at = frees_at if retry_at is None else max(retry_at, frees_at)
    return retry_at


def _as_utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
