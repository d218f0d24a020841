"""Pairing a gateway with the OAuth 2.0 Device Authorization Grant (RFC 8628), and revoking it.

The flow: the gateway asks for a code pair (:func:`start_authorization`) and shows the user code;
the signed-in user types it in (:func:`approve`, or :func:`deny`); meanwhile the gateway polls
(:func:`exchange_device_code`) until it receives its device token.

The device appears in the user's list as soon as they approve, before the gateway has collected
its token. Until then its ``token_hash`` holds a placeholder derived from the device code's hash
that contains a non-hex character: no bearer token hashes to it, so a pending device cannot
authenticate, and the exchange finds the device through it without an extra column.

Each action runs one transaction. Only hashes of the device code and the device token are
stored.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.orm import Session

from ecommunity.cloud.db.devices import (
    find_authorization_by_device_code_hash,
    find_authorization_by_user_code,
    find_device_by_token_hash,
    find_device_of_user,
    forget_authorizations_expired_before,
    user_code_taken,
)
from ecommunity.cloud.db.models import Device, DeviceAuthorization, User
from ecommunity.cloud.errors import CloudError, NotFoundError
from ecommunity.cloud.security import new_token, token_hash

logger = logging.getLogger(__name__)

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
#: RFC 8628 §6.1: consonants only, so that no word (and no 0/O, 1/I confusion) can come out.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
#: RFC 8628 §3.5: each ``slow_down`` adds 5 seconds to the polling interval. [s]
SLOW_DOWN_STEP_S = 5
#: How long expired authorizations are kept, so that a late poll still hears ``expired_token``
#: rather than ``invalid_grant``. [s]
EXPIRED_KEPT_S = 24 * 3600

Status = Literal["pending", "approved", "denied", "consumed"]
GrantErrorCode = Literal[
    "invalid_request",
    "authorization_pending",
    "slow_down",
    "access_denied",
    "expired_token",
    "invalid_grant",
    "unsupported_grant_type",
]

_PENDING_PREFIX = "pending:"


class DeviceGrantError(CloudError):
    """An RFC 8628 §3.5 token error; the token endpoint answers it in OAuth's format."""

    status = 400

    def __init__(self, error: GrantErrorCode, description: str) -> None:
        super().__init__(description)
        self.code = error
        self.error: GrantErrorCode = error


class UserCodeExpiredError(CloudError):
    code = "user_code_expired"


class UserCodeUsedError(CloudError):
    code = "user_code_used"


@dataclass(frozen=True)
class NewAuthorization:
    """A fresh code pair. ``device_code`` is shown once: the database keeps only its hash."""

    device_code: str
    #: Normalised (no dash); :func:`format_user_code` gives the form people read.
    user_code: str
    expires_in_s: int
    interval_s: int


@dataclass(frozen=True)
class IssuedDeviceToken:
    """The gateway's bearer token, shown once."""

    access_token: str
    device_id: int


def normalise_user_code(text: str) -> str:
    """The stored form of a user code as someone typed it: upper case, without dashes or spaces.

    Raises:
        ValueError: not 8 letters from :data:`USER_CODE_ALPHABET`.
    """
    code = "".join(text.split()).replace("-", "").upper()
    if len(code) != USER_CODE_LENGTH or any(c not in USER_CODE_ALPHABET for c in code):
        raise ValueError(
            f"a user code is {USER_CODE_LENGTH} letters from {USER_CODE_ALPHABET}, "
            "like WDJB-MJHT (case and dash do not matter)"
        )
    return code


def format_user_code(code: str) -> str:
    """``WDJBMJHT`` as people read it: ``WDJB-MJHT``."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def start_authorization(
    db: Session,
    *,
    hardware_id: str,
    ttl_s: int,
    interval_s: int,
    now: datetime | None = None,
) -> NewAuthorization:
    """Open a device authorization request for the gateway ``hardware_id``."""
    now = now or datetime.now(UTC)
    # Old requests are swept here rather than by a job: this is the only place that makes them.
    forget_authorizations_expired_before(db, now - timedelta(seconds=EXPIRED_KEPT_S))
    user_code = _unused_user_code(db)
    device_code = new_token()
    db.add(
        DeviceAuthorization(
            device_code_hash=token_hash(device_code),
            user_code=user_code,
            hardware_id=hardware_id,
            status="pending",
            interval_s=interval_s,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
        )
    )
    db.commit()
    logger.info("device authorization opened for hardware id %r", hardware_id)
    return NewAuthorization(
        device_code=device_code, user_code=user_code, expires_in_s=ttl_s, interval_s=interval_s
    )


def exchange_device_code(
    db: Session, device_code: str, *, now: datetime | None = None
) -> IssuedDeviceToken:
    """The gateway's poll (RFC 8628 §3.4): the device token once the user approved.

    A poll that comes sooner than the current interval after the previous one gets
    ``slow_down`` and makes the interval 5 s longer. The poll time and interval are committed
    even when the answer is an error.

    Raises:
        DeviceGrantError: ``authorization_pending``, ``slow_down``, ``access_denied``,
            ``expired_token`` or ``invalid_grant`` (unknown or already used device code).
    """
    now = now or datetime.now(UTC)
    auth = find_authorization_by_device_code_hash(db, token_hash(device_code), for_update=True)
    if auth is None or auth.status == "consumed":
        raise DeviceGrantError("invalid_grant", "the device code is unknown or was already used")
    if _as_utc(auth.expires_at) <= now:
        raise DeviceGrantError("expired_token", "the device code expired: request a new one")
    if auth.status == "denied":
        raise DeviceGrantError("access_denied", "the user denied the pairing")
    if auth.status == "pending":
        error = _record_poll(auth, now)
        db.commit()
        raise error
    device = find_device_by_token_hash(db, _pending_token_hash(auth.device_code_hash))
    auth.status = "consumed"
    auth.last_polled_at = now
    if device is None or device.revoked_at is not None:
        # The user removed the device again before the gateway collected its token.
        db.commit()
        raise DeviceGrantError("access_denied", "the user removed this device")
    token = new_token()
    device.token_hash = token_hash(token)
    db.commit()
    logger.info("device %d collected its token", device.id)
    return IssuedDeviceToken(access_token=token, device_id=device.id)


def approve(
    db: Session, user: User, user_code: str, *, name: str, now: datetime | None = None
) -> Device:
    """Pair the gateway waiting with ``user_code`` (normalised) to ``user`` as ``name``.

    Raises:
        NotFoundError: no request has this code.
        UserCodeExpiredError: the request expired.
        UserCodeUsedError: the request was already approved or denied.
    """
    now = now or datetime.now(UTC)
    auth = _open_authorization(db, user_code, now)
    auth.status = "approved"
    auth.user_id = user.id
    auth.device_name = name
    device = Device(
        user_id=user.id,
        hardware_id=auth.hardware_id,
        name=name,
        token_hash=_pending_token_hash(auth.device_code_hash),
        created_at=now,
    )
    db.add(device)
    db.commit()
    logger.info("user %d approved device %d", user.id, device.id)
    return device


def deny(db: Session, user: User, user_code: str, *, now: datetime | None = None) -> None:
    """Refuse the gateway waiting with ``user_code``: its next poll hears ``access_denied``.

    Raises:
        NotFoundError, UserCodeExpiredError, UserCodeUsedError: as :func:`approve`.
    """
    auth = _open_authorization(db, user_code, now or datetime.now(UTC))
    auth.status = "denied"
    auth.user_id = user.id
    db.commit()
    logger.info("user %d denied a device authorization", user.id)


def revoke(db: Session, user: User, device_id: int, *, now: datetime | None = None) -> Device:
    """Revoke ``user``'s device: its token stops working with the next request. Revoking a
    revoked device changes nothing.

    Raises:
        NotFoundError: ``user`` has no device ``device_id`` (someone else's included).
    """
    device = find_device_of_user(db, user.id, device_id)
    if device is None:
        raise NotFoundError(f"you have no device {device_id}")
    if device.revoked_at is None:
        device.revoked_at = now or datetime.now(UTC)
        db.commit()
        logger.info("user %d revoked device %d", user.id, device_id)
    return device


def _record_poll(auth: DeviceAuthorization, now: datetime) -> DeviceGrantError:
    previous = auth.last_polled_at
    auth.last_polled_at = now
    if previous is not None and now - _as_utc(previous) < timedelta(seconds=auth.interval_s):
        auth.interval_s += SLOW_DOWN_STEP_S
        return DeviceGrantError(
            "slow_down", f"polled too fast: wait at least {auth.interval_s} s between polls"
        )
    return DeviceGrantError("authorization_pending", "the user has not confirmed the code yet")


def _open_authorization(db: Session, user_code: str, now: datetime) -> DeviceAuthorization:
    auth = find_authorization_by_user_code(db, user_code, for_update=True)
    if auth is None:
        raise NotFoundError("no gateway is waiting with this code: check it on the gateway")
    if auth.status != "pending":
        raise UserCodeUsedError("this code was already used: restart pairing on the gateway")
    if _as_utc(auth.expires_at) <= now:
        raise UserCodeExpiredError("this code expired: restart pairing on the gateway")
    return auth


def _unused_user_code(db: Session) -> str:
    # 20**8 codes: a clash with a stored one is rare, but it would make the insert fail.
    while True:
        code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
        if not user_code_taken(db, code):
            return code


def _pending_token_hash(device_code_hash: str) -> str:
    # 64 characters like a real hash, but ':' is not a hex digit: no token ever hashes to it.
    return _PENDING_PREFIX + device_code_hash[: 64 - len(_PENDING_PREFIX)]


def _as_utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
