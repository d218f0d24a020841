"""Readings to an MQTT broker, announced with Home Assistant MQTT discovery.

With a broker configured, each meter shows up in Home Assistant as a device of its own, linked
to the gateway (``via_device``), with sensors for energy import and export (the counters the
energy dashboard takes), power import and export, the reactive and phase values the meter
sends, and the time of the last reading.

Topics (``<base>`` is :attr:`MqttSettings.base_topic`, ``<prefix>`` the discovery prefix):

- ``<base>/<gateway>/availability``: ``online``/``offline``, retained; ``offline`` is also the
  connection's last will, so Home Assistant marks every sensor unavailable when the gateway
  dies or loses its network.
- ``<base>/<gateway>/<meter>/state``: one JSON object per reading, retained, with every value of
  the meter; each sensor picks its value with a ``value_template``. One message per reading
  rather than one per sensor: a dozen values of the same push arrive together, and the broker
  and Home Assistant handle a twelfth of the messages.
- ``<prefix>/sensor/ecommunity_<meter>/<quantity>/config``: the discovery configs, retained,
  published when a meter is first seen, after every (re)connect and whenever Home Assistant
  announces itself (``<prefix>/status`` = ``online``, its birth message after a restart).

Energies go out in Wh, as the meter counts them: integers, exact, no rounding; Home Assistant's
energy dashboard takes Wh and shows kWh. States are rate-limited per meter
(:attr:`MqttSettings.interval_s`, latest reading wins): a meter pushing every second would
otherwise write a second-by-second history into Home Assistant's database that no chart needs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from hashlib import sha256
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import aiomqtt

from ecommunity.meter import Reading, get_profile

logger = logging.getLogger(__name__)

DEFAULT_PORT: Final = 1883
DEFAULT_TLS_PORT: Final = 8883
ONLINE: Final = "online"
OFFLINE: Final = "offline"
#: A connection that lasted this long counts as healthy: the back-off starts over. [s]
HEALTHY_AFTER_S: Final = 30.0
#: Meters one gateway announces; readings of further meter ids are dropped (a gateway reads
#: one meter, rarely a few: more means frames of something else).
MAX_METERS: Final = 16
#: How long a clean stop waits to say ``offline`` before it gives up. [s]
GOODBYE_TIMEOUT_S: Final = 2.0
#: Errors that mean "the broker is not there or went away": retried, never raised.
_BROKER_ERRORS: Final = (aiomqtt.MqttError, OSError, TimeoutError)


# -- settings -------------------------------------------------------------------------------


def _redact(url: str) -> str:
    """``url`` with the password replaced, for logs and error messages."""
    return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url)


def _check_topic_prefix(name: str, value: str) -> None:
    if not value:
        raise ValueError(f"{name} must not be empty")
    if any(c in value for c in "+#\0"):
        raise ValueError(f"{name} {value!r} must not contain the MQTT wildcards + or #")
    if value.startswith("$"):
        raise ValueError(f"{name} {value!r} must not start with $ (reserved for the broker)")
    if value.startswith("/") or value.endswith("/") or "//" in value:
        raise ValueError(f"{name} {value!r} must not start or end with / or have empty levels")
    if len(value.encode()) > 200:
        raise ValueError(f"{name} is longer than 200 bytes")


@dataclass(frozen=True)
class MqttSettings:
    """Where to publish: a broker URL and the topics.

    ``url`` is ``mqtt://[user[:password]@]host[:port]`` (port 1883), or ``mqtts://`` for TLS
    (port 8883, the broker's certificate checked against the system's CAs). User and password
    are percent-decoded. Constructing the settings validates them (:class:`ValueError` with
    the reason); the password never appears in ``repr`` or in messages.
    """

    url: str = field(repr=False)
    base_topic: str = "ecommunity"
    discovery_prefix: str = "homeassistant"
    #: The shortest time between two state messages of one meter; the latest reading wins.
    #: 0 publishes every reading. [s]
    interval_s: float = 10.0
    #: MQTT keep-alive: a dead broker is noticed after about 1.5 times this. [s]
    keepalive_s: int = 30
    #: How long to wait for the broker to answer (connect, acknowledgements). [s]
    timeout_s: float = 5.0
    host: str = field(init=False, default="")
    port: int = field(init=False, default=DEFAULT_PORT)
    tls: bool = field(init=False, default=False)
    username: str | None = field(init=False, default=None)
    password: str | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        shown = _redact(self.url)
        try:
            parts = urlsplit(self.url)
        except ValueError as exc:  # e.g. an unbalanced [ in an IPv6 host
            raise ValueError(f"MQTT URL {shown!r} is malformed: {exc}") from None
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(
                f"MQTT URL {shown!r} must start with mqtt:// or mqtts:// (TLS), "
                f"not {parts.scheme + '://' if parts.scheme else 'no scheme'}"
            )
        if not parts.hostname:
            raise ValueError(f"MQTT URL {shown!r} names no broker host")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(
                f"MQTT URL {shown!r} has an invalid port (a number 1…65535 is expected)"
            ) from None
        if port == 0:
            raise ValueError(f"MQTT URL {shown!r} has port 0 (1…65535 is expected)")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(
                f"MQTT URL {shown!r} has a path, query or fragment: only "
                "mqtt://[user[:password]@]host[:port] is understood (topics are set apart)"
            )
        if parts.password is not None and not parts.username:
            raise ValueError(f"MQTT URL {shown!r} has a password but no user name")
        _check_topic_prefix("base_topic", self.base_topic)
        _check_topic_prefix("discovery_prefix", self.discovery_prefix)
        if not self.interval_s >= 0:
            raise ValueError(f"interval_s must be 0 or more, got {self.interval_s}")
        if not 5 <= self.keepalive_s <= 65535:
            raise ValueError(f"keepalive_s must be 5…65535, got {self.keepalive_s}")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be more than 0, got {self.timeout_s}")
        tls = parts.scheme == "mqtts"
        object.__setattr__(self, "host", parts.hostname)
        object.__setattr__(self, "port", port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT))
        object.__setattr__(self, "tls", tls)
        object.__setattr__(self, "username", unquote(parts.username) if parts.username else None)
        password = None if parts.password is None else unquote(parts.password)
        object.__setattr__(self, "password", password)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        base_topic: str = "ecommunity",
        discovery_prefix: str = "homeassistant",
        interval_s: float = 10.0,
        keepalive_s: int = 30,
        timeout_s: float = 5.0,
    ) -> MqttSettings:
        """Parse and check ``url`` and the topics. Raises ValueError with the reason."""
        return cls(
            url.strip(),
            base_topic=base_topic.strip(),
            discovery_prefix=discovery_prefix.strip(),
            interval_s=interval_s,
            keepalive_s=keepalive_s,
            timeout_s=timeout_s,
        )

    @property
    def redacted_url(self) -> str:
        """The broker URL without its password."""
        return _redact(self.url)


# -- what Home Assistant is told ------------------------------------------------------------


@dataclass(frozen=True)
class Quantity:
    """One sensor of a meter: a :class:`Reading` field and how Home Assistant shows it."""

    #: The sensor's part of the unique id and of the discovery topic.
    key: str
    name: str
    #: The :class:`Reading` attribute, also the key in the state JSON.
    attribute: str
    device_class: str | None
    state_class: str | None
    unit: str | None
    diagnostic: bool = False


def _quantity(key: str, name: str, attribute: str, kind: str) -> Quantity:
    device_class, state_class, unit = _KINDS[kind]
    return Quantity(key, name, attribute, device_class, state_class, unit)


_KINDS: Final[dict[str, tuple[str, str, str | None]]] = {
    # total_increasing: the meter's counters only grow (a drop would read as a meter swap).
    "energy": ("energy", "total_increasing", "Wh"),
    "power": ("power", "measurement", "W"),
    # Home Assistant knows reactive_energy since mid-2025; an older one refuses just these
    # two sensors (each config stands alone), the rest still appear.
    "reactive_energy": ("reactive_energy", "total_increasing", "varh"),
    "reactive_power": ("reactive_power", "measurement", "var"),
    "voltage": ("voltage", "measurement", "V"),
    "current": ("current", "measurement", "A"),
    "power_factor": ("power_factor", "measurement", None),
}

#: Every sensor a meter can have, in the order Home Assistant lists them; a meter gets those
#: its readings carry.
QUANTITIES: Final[tuple[Quantity, ...]] = (
    _quantity("energy_import", "Energy import", "energy_import_wh", "energy"),
    _quantity("energy_export", "Energy export", "energy_export_wh", "energy"),
    _quantity("power_import", "Power import", "power_import_w", "power"),
    _quantity("power_export", "Power export", "power_export_w", "power"),
    _quantity(
        "reactive_energy_import",
        "Reactive energy import",
        "reactive_energy_import_varh",
        "reactive_energy",
    ),
    _quantity(
        "reactive_energy_export",
        "Reactive energy export",
        "reactive_energy_export_varh",
        "reactive_energy",
    ),
    _quantity(
        "reactive_power_import",
        "Reactive power import",
        "reactive_power_import_var",
        "reactive_power",
    ),
    _quantity(
        "reactive_power_export",
        "Reactive power export",
        "reactive_power_export_var",
        "reactive_power",
    ),
    _quantity("voltage_l1", "Voltage L1", "voltage_l1_v", "voltage"),
    _quantity("voltage_l2", "Voltage L2", "voltage_l2_v", "voltage"),
    _quantity("voltage_l3", "Voltage L3", "voltage_l3_v", "voltage"),
    _quantity("current_l1", "Current L1", "current_l1_a", "current"),
    _quantity("current_l2", "Current L2", "current_l2_a", "current"),
    _quantity("current_l3", "Current L3", "current_l3_a", "current"),
    _quantity("power_factor", "Power factor", "power_factor", "power_factor"),
    Quantity("last_reading", "Last reading", "meter_timestamp", "timestamp", None, None, True),
)


def topic_id(text: str) -> str:
    """``text`` as a topic level and id part: ``[A-Za-z0-9_-]`` only (Home Assistant's rule
    for discovery ids), with a short hash of the original where characters were replaced,
    so that ``"a b"`` and ``"a_b"`` stay apart."""
    slug = re.sub(r"[^A-Za-z0-9_-]", "_", text)
    if slug == text and slug:
        return slug
    return f"{slug}_{sha256(text.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class Gateway:
    """The gateway as Home Assistant's device list shows it."""

    id: str
    name: str
    version: str

    @property
    def slug(self) -> str:
        return topic_id(self.id)

    @property
    def device_identifier(self) -> str:
        return f"ecommunity_gateway_{self.slug}"


@dataclass(frozen=True)
class Meter:
    """One meter the gateway reads: its identity in topics and in Home Assistant."""

    #: The meter's id, or ``<gateway id>-<profile>`` for a meter whose frames carry none
    #: (AMIS): stable for as long as the gateway reads that meter.
    identity: str
    meter_id: str | None
    profile: str

    @classmethod
    def of(cls, reading: Reading, gateway: Gateway) -> Meter:
        identity = reading.meter_id or f"{gateway.id}-{reading.profile}"
        return cls(identity=identity, meter_id=reading.meter_id or None, profile=reading.profile)

    @property
    def slug(self) -> str:
        return topic_id(self.identity)


def _json_number(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def quantities_of(reading: Reading) -> frozenset[str]:
    """The keys of the quantities ``reading`` has a value for."""
    return frozenset(q.key for q in QUANTITIES if getattr(reading, q.attribute) is not None)


def state_payload(reading: Reading, keys: frozenset[str]) -> dict[str, Any]:
    """The state JSON of ``reading`` for the sensors ``keys``: numbers as the meter sent them
    (integers stay integers), the time in UTC ISO 8601, null where this reading lacks a value
    (Home Assistant then shows the sensor as unknown)."""
    return {
        q.attribute: _json_number(getattr(reading, q.attribute))
        for q in QUANTITIES
        if q.key in keys
    }


def _origin(gateway: Gateway) -> dict[str, str]:
    return {"name": "eCommunity gateway", "sw_version": gateway.version}


def _meter_device(meter: Meter, gateway: Gateway) -> dict[str, Any]:
    device: dict[str, Any] = {
        "identifiers": [f"ecommunity_meter_{meter.slug}"],
        "name": f"Smart meter {meter.meter_id}" if meter.meter_id else "Smart meter",
        "via_device": gateway.device_identifier,
    }
    try:
        profile = get_profile(meter.profile)
    except (KeyError, ValueError):
        profile = None
    if profile is not None and profile.meters:
        # "Kaifa MA309M", "Sagemcom T210-D" → manufacturer "Kaifa / Sagemcom".
        makers = dict.fromkeys(model.split()[0] for model in profile.meters)
        device["manufacturer"] = " / ".join(makers)
        device["model"] = " / ".join(profile.meters)
    if meter.meter_id:
        device["serial_number"] = meter.meter_id
    return device


def meter_discovery(
    meter: Meter, keys: frozenset[str], gateway: Gateway, settings: MqttSettings
) -> list[tuple[str, dict[str, Any]]]:
    """The discovery ``(topic, config)`` pairs of ``meter``'s sensors ``keys``."""
    state_topic = meter_state_topic(settings, gateway, meter)
    device = _meter_device(meter, gateway)
    configs = []
    for q in QUANTITIES:
        if q.key not in keys:
            continue
        config: dict[str, Any] = {
            "name": q.name,
            "unique_id": f"ecommunity_{meter.slug}_{q.key}",
            "state_topic": state_topic,
            "value_template": f"{{{{ value_json.{q.attribute} }}}}",
            "availability_topic": availability_topic(settings, gateway),
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "device": device,
            "origin": _origin(gateway),
        }
        if q.device_class is not None:
            config["device_class"] = q.device_class
        if q.state_class is not None:
            config["state_class"] = q.state_class
        if q.unit is not None:
            config["unit_of_measurement"] = q.unit
        if q.diagnostic:
            config["entity_category"] = "diagnostic"
        topic = f"{settings.discovery_prefix}/sensor/ecommunity_{meter.slug}/{q.key}/config"
        configs.append((topic, config))
    return configs


def gateway_discovery(gateway: Gateway, settings: MqttSettings) -> tuple[str, dict[str, Any]]:
    """The gateway's own device: one connectivity sensor on the availability topic (so that
    the meters' ``via_device`` names a device that exists, and the gateway's state shows)."""
    config = {
        "name": "Connection",
        "unique_id": f"{gateway.device_identifier}_connection",
        "state_topic": availability_topic(settings, gateway),
        "payload_on": ONLINE,
        "payload_off": OFFLINE,
        "device_class": "connectivity",
        "entity_category": "diagnostic",
        "device": {
            "identifiers": [gateway.device_identifier],
            "name": gateway.name,
            "manufacturer": "eCommunity",
            "model": "Home gateway",
            "sw_version": gateway.version,
        },
        "origin": _origin(gateway),
    }
    topic = f"{settings.discovery_prefix}/binary_sensor/{gateway.device_identifier}/connection"
    return topic + "/config", config


def availability_topic(settings: MqttSettings, gateway: Gateway) -> str:
    return f"{settings.base_topic}/{gateway.slug}/availability"


def meter_state_topic(settings: MqttSettings, gateway: Gateway, meter: Meter) -> str:
    return f"{settings.base_topic}/{gateway.slug}/{meter.slug}/state"


def birth_topic(settings: MqttSettings) -> str:
    """Where Home Assistant says ``online`` when it (re)starts."""
    return f"{settings.discovery_prefix}/status"


# -- the publisher --------------------------------------------------------------------------


@dataclass
class _MeterSlot:
    meter: Meter
    #: Every quantity this meter's readings have carried.
    keys: frozenset[str] = frozenset()
    #: The quantities announced on the current connection (empty: announce again).
    announced: frozenset[str] = frozenset()
    #: The newest reading not yet published.
    pending: Reading | None = None
    #: The last reading published, sent again after Home Assistant restarts.
    last: Reading | None = None
    sent_at: float | None = None


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, aiomqtt.MqttError) else f"{type(exc).__name__}: {text}"


class MqttPublisher:
    """Publishes readings to an MQTT broker for Home Assistant, until cancelled.

    Call :meth:`publish` for each reading from the event loop's thread (it never waits: each
    meter has one slot that the newest reading takes, so an older unsent one is dropped and
    counted) and run :meth:`run` in that loop. Broker trouble is retried with exponential
    back-off and jitter, logged once per outage, and shown in :attr:`status`; :meth:`run`
    never raises for it.
    """

    def __init__(
        self,
        settings: MqttSettings,
        *,
        gateway_id: str,
        gateway_name: str,
        version: str,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 60.0,
    ) -> None:
        if not gateway_id:
            raise ValueError("gateway_id must not be empty")
        self.settings = settings
        self.gateway = Gateway(id=gateway_id, name=gateway_name or gateway_id, version=version)
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self._slots: dict[str, _MeterSlot] = {}
        self._wake = asyncio.Event()
        self._connected = False
        self._published = 0
        self._dropped = 0
        self._connects = 0
        self._last_error: str | None = None
        self._warned_offline = False
        self._warned_meters = False
        self._gateway_announced = False
        self._tls_context: ssl.SSLContext | None = None

    # -- called from the loop's thread ------------------------------------------------------

    def publish(self, reading: Reading) -> None:
        """Queue ``reading`` for publishing; the newest reading of a meter replaces an unsent
        older one (counted in ``dropped``). Never blocks, never raises."""
        meter = Meter.of(reading, self.gateway)
        slot = self._slots.get(meter.identity)
        if slot is None:
            if len(self._slots) >= MAX_METERS:
                self._dropped += 1
                level = logging.DEBUG if self._warned_meters else logging.WARNING
                self._warned_meters = True
                logger.log(
                    level,
                    "MQTT: more than %d meters; readings of meter %r are not published",
                    MAX_METERS,
                    meter.identity,
                )
                return
            slot = self._slots[meter.identity] = _MeterSlot(meter)
        if slot.pending is not None and slot.pending is not slot.last:
            self._dropped += 1
        slot.pending = reading
        keys = quantities_of(reading)
        if not keys <= slot.keys:
            slot.keys |= keys
        self._wake.set()

    @property
    def status(self) -> dict[str, object]:
        """``connected``, ``published`` (state messages), ``dropped`` (readings replaced by a
        newer one before they went out, or beyond :data:`MAX_METERS`), ``last_error`` (the
        last broker trouble, kept after recovery), and the broker, meters and connects."""
        return {
            "connected": self._connected,
            "broker": self.settings.redacted_url,
            "published": self._published,
            "dropped": self._dropped,
            "last_error": self._last_error,
            "meters": len(self._slots),
            "connects": self._connects,
        }

    # -- the connection loop ----------------------------------------------------------------

    async def run(self) -> None:
        """Publish until cancelled; reconnect with back-off whenever the broker is lost."""
        failures = 0
        try:
            while True:
                started = time.monotonic()
                try:
                    await self._session()
                    reason = "the broker closed the connection"
                except _BROKER_ERRORS as exc:
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        # A failed goodbye while stopping must not turn into a retry.
                        raise asyncio.CancelledError from exc
                    reason = _describe(exc)
                self._connected = False
                self._last_error = reason
                if time.monotonic() - started >= HEALTHY_AFTER_S:
                    failures = 0
                delay = min(self.retry_initial_s * 2**failures, self.retry_max_s)
                failures += 1
                # Jitter: gateways that lost a shared broker do not all return at once.
                delay = random.uniform(delay / 2, delay)
                level = logging.DEBUG if self._warned_offline else logging.WARNING
                self._warned_offline = True
                logger.log(
                    level,
                    "MQTT broker %s unavailable: %s; retrying in %.1f s",
                    self.settings.redacted_url,
                    reason,
                    delay,
                )
                await asyncio.sleep(delay)
        finally:
            self._connected = False

    def _client(self) -> aiomqtt.Client:
        settings = self.settings
        if settings.tls and self._tls_context is None:
            self._tls_context = ssl.create_default_context()
        return aiomqtt.Client(
            settings.host,
            settings.port,
            username=settings.username,
            password=settings.password,
            identifier=f"ecommunity-{self.gateway.slug}",
            will=aiomqtt.Will(
                availability_topic(settings, self.gateway), OFFLINE, qos=1, retain=True
            ),
            clean_session=True,
            keepalive=settings.keepalive_s,
            timeout=settings.timeout_s,
            tls_context=self._tls_context,
            logger=logging.getLogger(__name__ + ".client"),
        )

    async def _session(self) -> None:
        """One connection, until it fails (raises what ended it) or the task is cancelled."""
        async with self._client() as client:
            self._connected = True
            self._connects += 1
            level = logging.WARNING if self._warned_offline else logging.INFO
            self._warned_offline = False
            logger.log(level, "MQTT connected to %s", self.settings.redacted_url)
            try:
                await self._connected_session(client)
            except asyncio.CancelledError:
                await self._goodbye(client)
                raise

    async def _connected_session(self, client: aiomqtt.Client) -> None:
        await client.subscribe(birth_topic(self.settings), qos=1)
        await client.publish(
            availability_topic(self.settings, self.gateway), ONLINE, qos=1, retain=True
        )
        self._forget_announcements()
        tasks = [
            asyncio.create_task(self._receive(client), name="mqtt-receive"),
            asyncio.create_task(self._send(client), name="mqtt-send"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            error = task.exception()
            if error is not None:
                raise error

    async def _goodbye(self, client: aiomqtt.Client) -> None:
        """A clean stop sends no will: say ``offline`` ourselves (best effort)."""
        topic = availability_topic(self.settings, self.gateway)
        try:
            await client.publish(topic, OFFLINE, qos=1, retain=True, timeout=GOODBYE_TIMEOUT_S)
        except _BROKER_ERRORS as exc:
            logger.debug("MQTT: could not say offline on stopping: %s", _describe(exc))

    def _forget_announcements(self) -> None:
        """Announce everything again: a new connection, or Home Assistant restarted."""
        self._gateway_announced = False
        for slot in self._slots.values():
            slot.announced = frozenset()
            if slot.pending is None:
                slot.pending = slot.last
        self._wake.set()

    async def _receive(self, client: aiomqtt.Client) -> None:
        """Home Assistant's birth messages; ends (raising) when the connection is lost."""
        async for message in client.messages:
            if message.topic.matches(birth_topic(self.settings)) and message.payload in (
                ONLINE,
                ONLINE.encode(),
            ):
                logger.info("MQTT: Home Assistant is online: announcing the meters again")
                self._forget_announcements()

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            next_due = await self._send_due(client)
            timeout = None if next_due is None else max(0.0, next_due - time.monotonic())
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()

    async def _send_due(self, client: aiomqtt.Client) -> float | None:
        """Announce what is new and publish every state that is due; returns when the next
        held-back state falls due (monotonic), or None."""
        if not self._gateway_announced:
            topic, config = gateway_discovery(self.gateway, self.settings)
            await client.publish(topic, json.dumps(config), qos=1, retain=True)
            self._gateway_announced = True
        next_due: float | None = None
        for slot in list(self._slots.values()):
            if slot.keys != slot.announced:
                keys = slot.keys
                for topic, config in meter_discovery(slot.meter, keys, self.gateway, self.settings):
                    await client.publish(topic, json.dumps(config), qos=1, retain=True)
                slot.announced = keys
            reading = slot.pending
            if reading is None:
                continue
            now = time.monotonic()
            if slot.sent_at is not None and now < slot.sent_at + self.settings.interval_s:
                due = slot.sent_at + self.settings.interval_s
                next_due = due if next_due is None else min(next_due, due)
                continue
            payload = json.dumps(state_payload(reading, slot.announced))
            topic = meter_state_topic(self.settings, self.gateway, slot.meter)
            # Retained: Home Assistant shows the last values at once after it restarts.
            await client.publish(topic, payload, qos=0, retain=True)
            if slot.pending is reading:
                slot.pending = None
            slot.last = reading
            slot.sent_at = now
            self._published += 1
        return next_due
