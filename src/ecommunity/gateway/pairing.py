"""Pairing with a cloud account: the client side of the OAuth 2.0 Device Authorization Grant.

RFC 8628: the gateway asks the cloud for a code pair (``POST /api/v1/devices/code``), shows the
short ``user_code`` (log, stdout, status file), and polls ``POST /api/v1/devices/token`` every
``interval`` seconds (5 s more after each ``slow_down``) until the user has confirmed the code in
the web app. The answer is the device token, which the caller stores in the secrets file.

``access_denied`` and ``expired_token`` end pairing with a clear status (the gateway keeps
running local-only; restarting it asks for a new code). A cloud that cannot be reached is
retried with back-off. The device code and the token are secrets and are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

import httpx
from pydantic import SecretStr

from ecommunity.gateway.settings import DeviceCredentials

logger = logging.getLogger(__name__)

GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:device_code"
#: RFC 8628 §3.5: each ``slow_down`` adds 5 s to the polling interval. [s]
SLOW_DOWN_STEP_S: Final = 5.0
#: Used when the cloud's answer has no interval (RFC 8628 §3.2 default). [s]
DEFAULT_INTERVAL_S: Final = 5.0


class PairingState(StrEnum):
    REQUESTING = "requesting_code"
    WAITING = "waiting_for_user"
    PAIRED = "paired"
    DENIED = "denied"
    EXPIRED = "expired"
    FAILED = "failed"


@dataclass
class PairingStatus:
    """What the gateway shows while pairing: the user code, where to type it, until when."""

    state: PairingState = PairingState.REQUESTING
    user_code: str | None = None
    verification_uri: str | None = None
    verification_uri_complete: str | None = None
    expires_at: datetime | None = None
    #: Why pairing stopped or is retrying, in words.
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "user_code": self.user_code,
            "verification_uri": self.verification_uri,
            "verification_uri_complete": self.verification_uri_complete,
            "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
            "detail": self.detail,
        }


class PairingError(Exception):
    """Pairing ended without a token; ``status.state`` says why (denied, expired, failed)."""

    def __init__(self, status: PairingStatus) -> None:
        super().__init__(status.detail)
        self.status = status


@dataclass
class _Code:
    device_code: str = field(repr=False)
    interval_s: float
    expires_at: datetime


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Pairing:
    """One pairing attempt against ``cloud_url`` (which ends in the host, no ``/api/v1``)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        cloud_url: str,
        hardware_id: str,
        *,
        on_change: Callable[[PairingStatus], None] = lambda status: None,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 60.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.client = client
        self.cloud_url = cloud_url.rstrip("/")
        self.hardware_id = hardware_id
        self.status = PairingStatus()
        self._on_change = on_change
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._failures = 0
        self._clock = clock

    async def run(self) -> DeviceCredentials:
        """Pair: returns the device credentials once the user confirmed the code.

        Raises:
            PairingError: the user denied the code, it expired, or the cloud refused the
                request for good (status ``denied``, ``expired`` or ``failed``).
        """
        while True:
            code = await self._request_code()
            credentials = await self._poll(code)
            if credentials is not None:
                self._set(PairingState.PAIRED, detail=f"paired as device {credentials.device_id}")
                logger.info("paired with %s as device %d", self.cloud_url, credentials.device_id)
                return credentials
            # None: the cloud forgot the code (invalid_grant); ask for a new one.

    def _set(self, state: PairingState, *, detail: str = "") -> None:
        self.status.state = state
        self.status.detail = detail
        self._on_change(self.status)

    def _fail(self, state: PairingState, detail: str) -> PairingError:
        self._set(state, detail=detail)
        logger.warning("pairing with %s stopped: %s", self.cloud_url, detail)
        return PairingError(self.status)

    async def _retry_later(self, what: str, exc: Exception | str) -> None:
        delay = min(self._retry_initial_s * 2**self._failures, self._retry_max_s)
        self._failures += 1
        delay = random.uniform(delay / 2, delay)
        level = logging.WARNING if self._failures == 1 else logging.DEBUG
        logger.log(level, "pairing: %s failed (%s); retrying in %.1f s", what, exc, delay)
        self.status.detail = f"{what} failed ({exc}); retrying"
        self._on_change(self.status)
        await asyncio.sleep(delay)

    async def _post(self, path: str, body: dict[str, str]) -> httpx.Response | None:
        """POST JSON; None (after a back-off) when the cloud cannot be reached or fails."""
        try:
            response = await self.client.post(self.cloud_url + path, json=body)
        except httpx.HTTPError as exc:
            await self._retry_later(f"POST {path}", exc)
            return None
        if response.status_code >= 500 or response.status_code == 429:
            await self._retry_later(f"POST {path}", f"HTTP {response.status_code}")
            return None
        self._failures = 0
        return response

    async def _request_code(self) -> _Code:
        self._set(PairingState.REQUESTING)
        while True:
            response = await self._post("/api/v1/devices/code", {"hardware_id": self.hardware_id})
            if response is None:
                continue
            if response.status_code != 200:
                raise self._fail(
                    PairingState.FAILED,
                    f"the cloud refused the pairing request: HTTP {response.status_code} "
                    f"{_reason(response)}",
                )
            try:
                data = response.json()
                code = _Code(
                    device_code=str(data["device_code"]),
                    interval_s=float(data.get("interval") or DEFAULT_INTERVAL_S),
                    expires_at=self._clock() + timedelta(seconds=float(data["expires_in"])),
                )
                user_code = str(data["user_code"])
                uri = str(data["verification_uri"])
                complete = data.get("verification_uri_complete")
            except (ValueError, KeyError, TypeError) as exc:
                raise self._fail(
                    PairingState.FAILED, f"the cloud's pairing answer is malformed: {exc!r}"
                ) from None
            status = self.status
            status.user_code = user_code
            status.verification_uri = uri
            status.verification_uri_complete = None if complete is None else str(complete)
            status.expires_at = code.expires_at
            self._set(PairingState.WAITING, detail=f"enter the code {user_code} at {uri}")
            logger.info(
                "to pair this gateway, sign in at %s and enter the code %s (valid until %s)",
                uri,
                user_code,
                code.expires_at.isoformat(timespec="seconds"),
            )
            return code

    async def _poll(self, code: _Code) -> DeviceCredentials | None:
        body = {"grant_type": GRANT_TYPE, "device_code": code.device_code}
        interval_s = code.interval_s
        while True:
            await asyncio.sleep(interval_s)
            if self._clock() >= code.expires_at + timedelta(seconds=interval_s):
                # The cloud would say expired_token; a cloud that is down cannot.
                raise self._fail(PairingState.EXPIRED, _EXPIRED)
            response = await self._post("/api/v1/devices/token", body)
            if response is None:
                continue
            if response.status_code == 200:
                try:
                    data = response.json()
                    return DeviceCredentials(
                        cloud_url=self.cloud_url,
                        device_id=int(data["device_id"]),
                        token=SecretStr(str(data["access_token"])),
                    )
                except (ValueError, KeyError, TypeError) as exc:
                    raise self._fail(
                        PairingState.FAILED, f"the cloud's token answer is malformed: {exc!r}"
                    ) from None
            error = _oauth_error(response)
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval_s += SLOW_DOWN_STEP_S
                logger.debug("pairing: slow_down, polling every %.0f s", interval_s)
                continue
            if error == "access_denied":
                raise self._fail(PairingState.DENIED, _DENIED)
            if error == "expired_token":
                raise self._fail(PairingState.EXPIRED, _EXPIRED)
            if error == "invalid_grant":
                logger.warning("pairing: the cloud no longer knows the code; asking for a new one")
                return None
            raise self._fail(
                PairingState.FAILED,
                f"the cloud refused the token request: HTTP {response.status_code} "
                f"{error or _reason(response)}",
            )


_DENIED: Final = "the code was refused in the web app; restart the gateway to pair again"
_EXPIRED: Final = "the code expired before it was confirmed; restart the gateway to pair again"


def _oauth_error(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, str) else None


def _reason(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(data, dict):
        detail = data.get("error_description") or data.get("detail")
        if isinstance(detail, str):
            return detail[:200]
    return response.reason_phrase
