"""The MQTT publisher against the machine's Mosquitto (127.0.0.1:1883), seen by a subscriber.

Each test uses topics of its own (parallel runs do not meet) and clears the retained messages
it leaves. Broker loss is tested against a Mosquitto of the test's own, started and killed on
a free port; the gateway's death against a publisher process killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiomqtt
import jinja2
import pytest

from ecommunity.gateway.mqtt import (
    MAX_METERS,
    QUANTITIES,
    MqttPublisher,
    MqttSettings,
    quantities_of,
    topic_id,
)
from ecommunity.meter import Reading, StreamDecoder
from tests.meter.vectors import VECTORS
from tests.services import require, services_required

HOST = "127.0.0.1"
PORT = 1883
ROOT = Path(__file__).resolve().parents[2]
#: Also the MQTT client id: unique per test process, so that parallel runs do not clash.
GATEWAY_ID = f"gw-test-{os.getpid()}"


def decoded(vector_id: str) -> Reading:
    """The first reading of a real captured frame from tests/data/meter-vectors."""
    (vector,) = [v for v in VECTORS if v.id == vector_id]
    decoder = StreamDecoder(vector.profile, key=vector.key, auth_key=vector.auth_key)
    decoder.feed(vector.wire)
    return next(iter(decoder))


#: AMIS (Netz OÖ spec example): no meter id in the frame, reactive energies and powers.
AMIS = decoded("amis-netzooe-spec-example")
#: Kaifa MA309M (Netz NÖ): a meter id, phase voltages and currents, power factor.
KAIFA = decoded("kaifa-netznoe-official-example")


def later(reading: Reading, seconds: int, **changes: Any) -> Reading:
    """``reading`` as the meter would push it ``seconds`` later, with ``changes``."""
    assert reading.meter_timestamp is not None
    assert reading.energy_import_wh is not None
    stamp = datetime.fromtimestamp(reading.meter_timestamp.timestamp() + seconds, UTC)
    values = {"energy_import_wh": reading.energy_import_wh + seconds, **changes}
    return replace(reading, meter_timestamp=stamp, **values)


def render(template: str, payload: bytes) -> str:
    """A ``value_template`` rendered the way Home Assistant does (Jinja, ``value_json``)."""
    text = payload.decode()
    return (
        jinja2.Environment().from_string(template).render(value=text, value_json=json.loads(text))
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


# -- topics of one test, a subscriber -------------------------------------------------------


@dataclass(frozen=True)
class Topics:
    base: str
    discovery: str

    def settings(self, port: int = PORT, **options: Any) -> MqttSettings:
        return MqttSettings.from_url(
            f"mqtt://{HOST}:{port}",
            base_topic=self.base,
            discovery_prefix=self.discovery,
            **options,
        )

    @property
    def availability(self) -> str:
        return f"{self.base}/{GATEWAY_ID}/availability"


@dataclass(frozen=True)
class Seen:
    topic: str
    payload: bytes
    retain: bool

    @property
    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass
class Watcher:
    """A subscriber that keeps every message it receives."""

    client: aiomqtt.Client
    messages: list[Seen] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def collect(self) -> None:
        async for message in self.client.messages:
            payload = message.payload
            assert isinstance(payload, bytes | bytearray)
            self.messages.append(Seen(str(message.topic), bytes(payload), message.retain))
            self.arrived.set()

    def on(self, topic: str) -> list[Seen]:
        return [m for m in self.messages if m.topic == topic]

    async def wait_for(
        self, predicate: Callable[[list[Seen]], bool], timeout_s: float = 10.0
    ) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate(self.messages):
                self.arrived.clear()
                await self.arrived.wait()

    async def quiet(self, seconds: float) -> int:
        """Wait ``seconds``; the number of messages that arrived meanwhile."""
        before = len(self.messages)
        await asyncio.sleep(seconds)
        return len(self.messages) - before


@contextlib.asynccontextmanager
async def watching(*patterns: str, port: int = PORT) -> AsyncIterator[Watcher]:
    async with aiomqtt.Client(HOST, port, identifier=f"watch-{uuid.uuid4().hex[:8]}") as client:
        watcher = Watcher(client)
        for pattern in patterns:
            await client.subscribe(pattern, qos=1)
        task = asyncio.create_task(watcher.collect())
        try:
            yield watcher
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def clear_retained(topics: Topics, port: int = PORT) -> int:
    """Delete every retained message under the test's topics; how many there were."""
    async with watching(f"{topics.base}/#", f"{topics.discovery}/#", port=port) as watcher:
        while await watcher.quiet(0.3):
            pass
        retained = {m.topic for m in watcher.messages if m.retain and m.payload}
        for topic in retained:
            await watcher.client.publish(topic, b"", qos=1, retain=True)
    return len(retained)


@pytest.fixture
def topics() -> Iterator[Topics]:
    require("Mosquitto", HOST, PORT)
    unique = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    made = Topics(base=f"ecommunity-test-{unique}", discovery=f"ha-test-{unique}")
    yield made
    asyncio.run(clear_retained(made))


@contextlib.asynccontextmanager
async def running(publisher: MqttPublisher) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(publisher.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def publisher_for(settings: MqttSettings, **options: Any) -> MqttPublisher:
    return MqttPublisher(
        settings, gateway_id=GATEWAY_ID, gateway_name="Test gateway", version="9.9.9", **options
    )


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


# -- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "username", "password"),
    [
        ("mqtt://broker.local", "broker.local", 1883, False, None, None),
        ("mqtt://127.0.0.1:1884/", "127.0.0.1", 1884, False, None, None),
        ("mqtts://broker.example.org", "broker.example.org", 8883, True, None, None),
        ("mqtt://ha@broker", "broker", 1883, False, "ha", None),
        ("mqtt://ha:p%40ss%3Aword@broker:1883", "broker", 1883, False, "ha", "p@ss:word"),
        ("mqtt://[::1]:1883", "::1", 1883, False, None, None),
        ("  mqtt://broker  ", "broker", 1883, False, None, None),
    ],
)
def test_settings_parse_the_broker_url(
    url: str, host: str, port: int, tls: bool, username: str | None, password: str | None
) -> None:
    settings = MqttSettings.from_url(url)
    assert (settings.host, settings.port, settings.tls) == (host, port, tls)
    assert (settings.username, settings.password) == (username, password)
    assert (settings.base_topic, settings.discovery_prefix) == ("ecommunity", "homeassistant")
    assert settings.interval_s == 10.0


@pytest.mark.parametrize(
    ("url", "options", "reason"),
    [
        ("http://broker", {}, "must start with mqtt:// or mqtts://"),
        ("broker:1883", {}, "must start with mqtt:// or mqtts://"),
        ("mqtt://", {}, "names no broker host"),
        ("mqtt://broker:0", {}, "port 0"),
        ("mqtt://broker:70000", {}, "invalid port"),
        ("mqtt://broker:abc", {}, "invalid port"),
        ("mqtt://broker/topic", {}, "path, query or fragment"),
        ("mqtt://broker?x=1", {}, "path, query or fragment"),
        ("mqtt://:secret@broker", {}, "password but no user name"),
        ("mqtt://[::1", {}, "malformed"),
        ("mqtt://broker", {"base_topic": ""}, "base_topic must not be empty"),
        ("mqtt://broker", {"base_topic": "home/#"}, "wildcards"),
        ("mqtt://broker", {"base_topic": "/home"}, "empty levels"),
        ("mqtt://broker", {"base_topic": "home//x"}, "empty levels"),
        ("mqtt://broker", {"base_topic": "$SYS"}, "reserved"),
        ("mqtt://broker", {"discovery_prefix": "ha+"}, "wildcards"),
        ("mqtt://broker", {"interval_s": -1}, "interval_s"),
        ("mqtt://broker", {"keepalive_s": 0}, "keepalive_s"),
    ],
)
def test_settings_refuse_bad_input_with_the_reason(
    url: str, options: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason.replace("?", r"\?").replace("+", r"\+")):
        MqttSettings.from_url(url, **options)


def test_the_password_is_never_shown() -> None:
    settings = MqttSettings.from_url("mqtt://ha:hunter2@broker:1883")
    assert "hunter2" not in repr(settings)
    assert settings.redacted_url == "mqtt://ha:***@broker:1883"
    with pytest.raises(ValueError, match="invalid port") as refused:
        MqttSettings.from_url("mqtt://ha:hunter2@broker:x")
    assert "hunter2" not in str(refused.value)


def test_topic_ids_are_safe_and_keep_distinct_ids_apart() -> None:
    assert topic_id("1KFM0200001234") == "1KFM0200001234"
    odd = topic_id("meter/1+#")
    assert odd.replace("_", "").replace("-", "").isalnum()
    assert odd != topic_id("meter_1__")
    assert topic_id("meter_1__") == "meter_1__"
    assert topic_id("") != ""


# -- discovery and state --------------------------------------------------------------------


def test_discovery_and_state_show_each_meter_in_home_assistant(topics: Topics) -> None:
    async def scenario() -> tuple[list[Seen], MqttPublisher]:
        publisher = publisher_for(topics.settings(interval_s=0))
        async with running(publisher):
            publisher.publish(AMIS)
            publisher.publish(KAIFA)
            await until(lambda: publisher.status["published"] == 2)
        # A subscriber that comes later gets the configs and states as retained messages.
        async with watching(f"{topics.base}/#", f"{topics.discovery}/#") as watcher:
            expected = 1 + len(quantities_of(AMIS)) + len(quantities_of(KAIFA)) + 2 + 1
            await watcher.wait_for(lambda seen: len(seen) >= expected)
            assert await watcher.quiet(0.3) == 0
            return watcher.messages, publisher

    seen, publisher = asyncio.run(scenario())
    assert all(m.retain for m in seen)
    by_topic = {m.topic: m for m in seen}
    availability = f"{topics.base}/{GATEWAY_ID}/availability"
    assert by_topic[availability].payload == b"offline"  # the publisher has stopped cleanly

    # The gateway is a device of its own, which the meters name as their way in.
    gateway_config = by_topic[
        f"{topics.discovery}/binary_sensor/ecommunity_gateway_{GATEWAY_ID}/connection/config"
    ].json
    assert gateway_config["device"]["identifiers"] == [f"ecommunity_gateway_{GATEWAY_ID}"]
    assert gateway_config["device"]["name"] == "Test gateway"
    assert gateway_config["device"]["sw_version"] == "9.9.9"
    assert gateway_config["state_topic"] == availability
    assert (gateway_config["payload_on"], gateway_config["payload_off"]) == ("online", "offline")
    assert gateway_config["device_class"] == "connectivity"

    # AMIS frames carry no meter id: the meter is known by gateway and profile.
    amis_slug = f"{GATEWAY_ID}-amis"
    amis_configs = {
        m.topic.split("/")[-2]: m.json
        for m in seen
        if m.topic.startswith(f"{topics.discovery}/sensor/ecommunity_{amis_slug}/")
    }
    assert set(amis_configs) == {
        "energy_import",
        "energy_export",
        "power_import",
        "power_export",
        "reactive_energy_import",
        "reactive_energy_export",
        "reactive_power_import",
        "reactive_power_export",
        "last_reading",
    }
    energy = amis_configs["energy_import"]
    assert energy["device_class"] == "energy"
    assert energy["state_class"] == "total_increasing"
    assert energy["unit_of_measurement"] == "Wh"
    assert energy["unique_id"] == f"ecommunity_{amis_slug}_energy_import"
    assert energy["availability_topic"] == availability
    assert (energy["payload_available"], energy["payload_not_available"]) == (
        "online",
        "offline",
    )
    assert energy["device"] == {
        "identifiers": [f"ecommunity_meter_{amis_slug}"],
        "name": "Smart meter",
        "via_device": f"ecommunity_gateway_{GATEWAY_ID}",
        "manufacturer": "Siemens",
        "model": "Siemens TD-3511 (AMIS)",
    }
    assert energy["origin"] == {"name": "eCommunity gateway", "sw_version": "9.9.9"}
    power = amis_configs["power_export"]
    assert (power["device_class"], power["state_class"], power["unit_of_measurement"]) == (
        "power",
        "measurement",
        "W",
    )
    reactive = amis_configs["reactive_energy_import"]
    assert (reactive["device_class"], reactive["unit_of_measurement"]) == (
        "reactive_energy",
        "varh",
    )
    stamp = amis_configs["last_reading"]
    assert stamp["device_class"] == "timestamp"
    assert stamp["entity_category"] == "diagnostic"
    assert "unit_of_measurement" not in stamp
    assert "state_class" not in stamp
    assert len({c["unique_id"] for c in amis_configs.values()}) == len(amis_configs)

    kaifa_configs = {
        m.topic.split("/")[-2]: m.json
        for m in seen
        if m.topic.startswith(f"{topics.discovery}/sensor/ecommunity_181220000009/")
    }
    assert {"voltage_l1", "current_l3", "power_factor"} <= set(kaifa_configs)
    assert "reactive_energy_import" not in kaifa_configs
    kaifa_device = kaifa_configs["energy_import"]["device"]
    assert kaifa_device["identifiers"] == ["ecommunity_meter_181220000009"]
    assert kaifa_device["name"] == "Smart meter 181220000009"
    assert kaifa_device["serial_number"] == "181220000009"
    assert kaifa_device["manufacturer"] == "Kaifa / Sagemcom"
    assert kaifa_configs["voltage_l1"]["unit_of_measurement"] == "V"

    # Every sensor's template, rendered as Home Assistant does, gives the reading's value.
    for configs, reading in ((amis_configs, AMIS), (kaifa_configs, KAIFA)):
        for key, config in configs.items():
            state = by_topic[config["state_topic"]]
            value = getattr(reading, next(q.attribute for q in QUANTITIES if q.key == key))
            rendered = render(config["value_template"], state.payload)
            if isinstance(value, datetime):
                assert datetime.fromisoformat(rendered) == value
                assert rendered.endswith("+00:00")  # UTC
            elif isinstance(value, Decimal):
                assert Decimal(rendered) == value
            else:
                assert rendered == str(value), key
    assert render(amis_configs["energy_import"]["value_template"], b'{"x": 1}') == ""
    assert publisher.status["connects"] == 1


def test_states_are_rate_limited_and_the_latest_reading_wins(topics: Topics) -> None:
    interval_s = 1.0
    state_topic = f"{topics.base}/{GATEWAY_ID}/181220000009/state"

    async def scenario() -> tuple[list[tuple[float, Seen]], dict[str, object]]:
        publisher = publisher_for(topics.settings(interval_s=interval_s))
        arrivals: list[tuple[float, Seen]] = []
        async with watching(state_topic) as watcher, running(publisher):
            publisher.publish(KAIFA)
            await watcher.wait_for(lambda seen: len(seen) == 1)
            arrivals.append((time.monotonic(), watcher.messages[0]))
            for second in range(1, 10):  # a meter pushing faster than the interval
                publisher.publish(later(KAIFA, second))
            await watcher.wait_for(lambda seen: len(seen) == 2)
            arrivals.append((time.monotonic(), watcher.messages[1]))
            assert await watcher.quiet(interval_s * 1.5) == 0  # nothing new: nothing sent
            # A value the meter stopped sending reads as null (unknown in Home Assistant).
            publisher.publish(later(KAIFA, 20, voltage_l2_v=None))
            await watcher.wait_for(lambda seen: len(seen) == 3)
            arrivals.append((time.monotonic(), watcher.messages[2]))
            return arrivals, publisher.status

    arrivals, status = asyncio.run(scenario())
    energies = [seen.json["energy_import_wh"] for _, seen in arrivals]
    assert energies == [
        KAIFA.energy_import_wh,
        later(KAIFA, 9).energy_import_wh,
        later(KAIFA, 20).energy_import_wh,
    ]
    assert arrivals[1][0] - arrivals[0][0] >= interval_s * 0.8
    assert arrivals[0][1].json["voltage_l2_v"] is not None
    assert arrivals[2][1].json["voltage_l2_v"] is None
    assert render("{{ value_json.voltage_l2_v }}", arrivals[2][1].payload) == "None"
    assert status["published"] == 3
    assert status["dropped"] == 8  # pushes 1…8 were replaced by push 9 before they went out
    assert status["connected"] is True


def test_home_assistant_restart_gets_the_configs_again(topics: Topics) -> None:
    async def scenario() -> None:
        publisher = publisher_for(topics.settings(interval_s=0))
        configs = 1 + len(quantities_of(KAIFA))

        def count(seen: list[Seen], suffix: str) -> int:
            return sum(m.topic.endswith(suffix) for m in seen)

        async with (
            watching(f"{topics.base}/#", f"{topics.discovery}/#") as watcher,
            running(publisher),
        ):
            publisher.publish(KAIFA)
            await watcher.wait_for(
                lambda seen: count(seen, "/config") == configs and count(seen, "/state") == 1
            )
            # Home Assistant's last will says offline: nothing to do.
            await watcher.client.publish(f"{topics.discovery}/status", b"offline")
            assert await watcher.quiet(0.5) == 1  # the message itself
            # Its birth message after a restart: every config again, and the state.
            await watcher.client.publish(f"{topics.discovery}/status", b"online")
            await watcher.wait_for(
                lambda seen: count(seen, "/config") == 2 * configs and count(seen, "/state") == 2
            )
            states = [m for m in watcher.messages if m.topic.endswith("/state")]
            assert states[0].payload == states[1].payload
            assert publisher.status["connects"] == 1

    asyncio.run(scenario())


def test_a_clean_stop_says_offline(topics: Topics) -> None:
    async def scenario() -> list[bytes]:
        publisher = publisher_for(topics.settings())
        async with watching(topics.availability) as watcher:
            async with running(publisher):
                await watcher.wait_for(lambda seen: len(seen) == 1)
                connected_while_running = publisher.status["connected"]
            await watcher.wait_for(lambda seen: len(seen) == 2)
            assert connected_while_running is True
            assert publisher.status["connected"] is False
            return [m.payload for m in watcher.messages]

    assert asyncio.run(scenario()) == [b"online", b"offline"]


CHILD = """
import asyncio, sys
from ecommunity.gateway.mqtt import MqttPublisher, MqttSettings
from tests.gateway.test_mqtt import KAIFA

async def main() -> None:
    url, base, discovery, gateway = sys.argv[1:]
    settings = MqttSettings.from_url(url, base_topic=base, discovery_prefix=discovery)
    publisher = MqttPublisher(settings, gateway_id=gateway, gateway_name="child", version="0")
    publisher.publish(KAIFA)
    task = asyncio.create_task(publisher.run())
    while publisher.status["published"] == 0:
        await asyncio.sleep(0.02)
    print("published", flush=True)
    await task

asyncio.run(main())
"""


def test_the_will_marks_the_sensors_unavailable_when_the_gateway_dies(topics: Topics) -> None:
    """The publisher's process is killed: no goodbye, the broker publishes the will."""

    async def scenario() -> None:
        async with watching(topics.availability) as watcher:
            with subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    f"mqtt://{HOST}:{PORT}",
                    topics.base,
                    topics.discovery,
                    GATEWAY_ID,
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            ) as child:
                assert child.stdout is not None
                async with asyncio.timeout(20):
                    line = await asyncio.to_thread(child.stdout.readline)
                assert line.strip() == "published"
                await watcher.wait_for(lambda seen: [m.payload for m in seen] == [b"online"])
                child.send_signal(signal.SIGKILL)
                await watcher.wait_for(lambda seen: len(seen) == 2)
                assert child.wait(timeout=10) == -signal.SIGKILL
            assert watcher.messages[1].payload == b"offline"
        # Retained: Home Assistant, restarting later, sees the gateway offline too.
        async with watching(topics.availability) as late:
            await late.wait_for(lambda seen: len(seen) == 1)
            assert (late.messages[0].payload, late.messages[0].retain) == (b"offline", True)

    asyncio.run(scenario())


# -- broker trouble -------------------------------------------------------------------------


def test_an_unreachable_broker_is_retried_without_raising_and_publish_never_waits(
    topics: Topics, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ecommunity.gateway.mqtt")
    port = free_port()  # nothing listens there

    def ours() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "ecommunity.gateway.mqtt"]

    async def scenario() -> tuple[dict[str, object], float, bool]:
        publisher = publisher_for(topics.settings(port=port), retry_initial_s=0.02, retry_max_s=0.1)
        async with running(publisher) as task:
            await until(lambda: len(ours()) >= 5)
            readings = [later(KAIFA, second) for second in range(10_000)]
            started = time.perf_counter()
            for reading in readings:
                publisher.publish(reading)
            elapsed_s = time.perf_counter() - started
            await asyncio.sleep(0.2)
            return publisher.status, elapsed_s, task.done()

    status, elapsed_s, finished = asyncio.run(scenario())
    assert not finished
    assert status["connected"] is False
    assert "Connection refused" in str(status["last_error"])
    assert status["published"] == 0
    assert status["dropped"] == 9_999  # one slot per meter: the newest reading waits
    # Never waits for the network: 10,000 calls take a few ms (a generous bound, loaded CI).
    assert elapsed_s < 1.0, elapsed_s
    warnings = [r for r in ours() if r.levelno >= logging.WARNING]
    retries = [r for r in ours() if "unavailable" in r.getMessage()]
    assert len(retries) >= 5
    assert len(warnings) == 1, "one warning per outage, the rest at DEBUG"
    assert f"127.0.0.1:{port}" in warnings[0].getMessage()


def test_publish_never_waits_while_connected(topics: Topics) -> None:
    async def scenario() -> tuple[float, dict[str, object], Any]:
        publisher = publisher_for(topics.settings(interval_s=0))
        state_topic = f"{topics.base}/{GATEWAY_ID}/181220000009/state"
        async with watching(state_topic) as watcher, running(publisher):
            await until(lambda: bool(publisher.status["connected"]))
            readings = [later(KAIFA, second) for second in range(10_000)]
            started = time.perf_counter()
            for reading in readings:
                publisher.publish(reading)
            elapsed_s = time.perf_counter() - started
            last = readings[-1].energy_import_wh
            await watcher.wait_for(
                lambda seen: bool(seen) and seen[-1].json["energy_import_wh"] == last
            )
            return elapsed_s, publisher.status, watcher.messages

    elapsed_s, status, seen = asyncio.run(scenario())
    assert elapsed_s < 1.0, elapsed_s
    # The loop ran no sender while publish() was called: the newest reading went out.
    assert status["published"] == len(seen) == 1
    assert status["dropped"] == 9_999


def test_more_meters_than_the_cap_are_dropped_and_counted() -> None:
    publisher = publisher_for(MqttSettings.from_url("mqtt://127.0.0.1:1"))
    for n in range(MAX_METERS + 3):
        publisher.publish(replace(KAIFA, meter_id=f"meter-{n}"))
    assert publisher.status["meters"] == MAX_METERS
    assert publisher.status["dropped"] == 3


class PrivateBroker:
    """A Mosquitto of this test's own on a free loopback port, to kill and start again."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
        )
        if binary is None:
            message = "the mosquitto binary is not installed (a private broker needs it)"
            if services_required():
                pytest.fail(message)
            pytest.skip(message)
        self.binary = binary
        self.port = free_port()
        self.config = directory / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} {HOST}\nallow_anonymous true\npersistence false\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _reachable(self.port):
            assert self.process.poll() is None, "mosquitto exited"
            assert time.monotonic() < deadline, "mosquitto did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    broker = PrivateBroker(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


def test_the_publisher_reconnects_and_announces_again_after_the_broker_is_lost(
    private_broker: PrivateBroker,
) -> None:
    topics = Topics(base="ecommunity-test", discovery="ha-test")  # a broker of our own
    configs = 1 + len(quantities_of(KAIFA))

    async def announced(port: int) -> list[Seen]:
        async with watching(f"{topics.discovery}/#", port=port) as watcher:
            await watcher.wait_for(lambda seen: len(seen) == configs)
            return watcher.messages

    async def scenario() -> None:
        publisher = publisher_for(
            topics.settings(port=private_broker.port, interval_s=0, keepalive_s=5),
            retry_initial_s=0.05,
            retry_max_s=0.2,
        )
        async with running(publisher) as task:
            publisher.publish(KAIFA)
            first = await announced(private_broker.port)
            private_broker.kill()  # loses every retained message: it keeps none on disk
            await until(lambda: publisher.status["connected"] is False)
            await asyncio.sleep(0.5)  # a few failed attempts
            assert not task.done()
            assert publisher.status["last_error"]
            publisher.publish(later(KAIFA, 60))
            await asyncio.to_thread(private_broker.start)
            await until(lambda: publisher.status["connects"] == 2)
            again = await announced(private_broker.port)
            assert {m.topic for m in again} == {m.topic for m in first}
            async with watching(f"{topics.base}/#", port=private_broker.port) as watcher:
                await watcher.wait_for(lambda seen: len(seen) == 2)
                by_topic = {m.topic: m for m in watcher.messages}
            assert by_topic[topics.availability].payload == b"online"
            (state,) = [m for m in watcher.messages if m.topic.endswith("/state")]
            assert state.json["energy_import_wh"] == later(KAIFA, 60).energy_import_wh
            assert publisher.status["connected"] is True

    asyncio.run(scenario())
