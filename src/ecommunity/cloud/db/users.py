"""Queries on accounts, login sessions and failed logins. Each takes a Session; none commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from ecommunity.cloud.db.models import LoginAttempt, User, UserSession


def find_user_by_email(db: Session, email: str) -> User | None:
    """The account with this (already lower-cased) address, if any."""
    return db.scalar(select(User).where(User.email == email))


def recent_failed_logins_by_account(
    db: Session, email: str, *, since: datetime, limit: int
) -> list[datetime]:
    """When the newest ``limit`` failed logins for ``email`` after ``since`` happened, newest
    first."""
    return _recent_failed_logins(db, LoginAttempt.email, email, since=since, limit=limit)


def recent_failed_logins_by_address(
    db: Session, address: str, *, since: datetime, limit: int
) -> list[datetime]:
    """When the newest ``limit`` failed logins from ``address`` after ``since`` happened, newest
    first."""
    return _recent_failed_logins(db, LoginAttempt.address, address, since=since, limit=limit)


def _recent_failed_logins(
    db: Session,
    column: InstrumentedAttribute[str],
    value: str,
    *,
    since: datetime,
    limit: int,
) -> list[datetime]:
    # Only the newest `limit` matter: the oldest of them decides when the window frees up, and
    # the limit bounds the work however many attempts an attacker has piled up.
    rows = db.scalars(
        select(LoginAttempt.attempted_at)
        .where(column == value, LoginAttempt.attempted_at > since)
        .order_by(LoginAttempt.attempted_at.desc())
        .limit(limit)
    )
    return list(rows)


def forget_failed_logins_before(db: Session, cutoff: datetime) -> None:
    """Delete failed logins older than ``cutoff``: they no longer count towards any limit."""
    db.execute(delete(LoginAttempt).where(LoginAttempt.attempted_at <= cutoff))


def find_session_by_token_hash(db: Session, token_hash: str) -> UserSession | None:
    """The login whose ``token_hash`` column holds this value, expired or revoked or not."""
    return db.scalar(select(UserSession).where(UserSession.token_hash == token_hash))


def revoke_sessions_of_user(
    db: Session, user_id: int, *, keep_session_id: int, now: datetime
) -> int:
    """Revoke every live session of ``user_id`` except ``keep_session_id``; how many."""
    result = db.execute(
        update(UserSession)
        .where(
            UserSession.user_id == user_id,
            UserSession.id != keep_session_id,
            UserSession.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)
