"""The real ``ecommunity gateway run`` process with ``--mqtt-url``: a fake AMIS meter on a pty,
the machine's Mosquitto, and a subscriber in the place of Home Assistant.

The gateway must announce the meter through Home Assistant MQTT discovery by itself, publish
its states with the stored counters, say it is online, and offline once it stops.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from tests.e2e.processes import wait_until
from tests.gateway.fake_meter import KEY, FakeAmisMeter, open_pty
from tests.gateway.gateway_process import start_gateway
from tests.gateway.test_mqtt import HOST, PORT, Topics, topics, watching

pytestmark = pytest.mark.slow

__all__ = ["topics"]  # the fixture, imported for the tests below


def test_the_gateway_shows_its_meter_in_home_assistant(topics: Topics, tmp_path: Path) -> None:
    pty = open_pty()
    meter = FakeAmisMeter(pty.master, push_interval_s=0.05, step=timedelta(seconds=10)).start()
    gateway = start_gateway(
        tmp_path, "--serial-port", pty.path, "--line", "9600-8N1", "--key", KEY.hex(),
        "--mqtt-url", f"mqtt://{HOST}:{PORT}", "--name", "Keller",
        env={
            "ECOMMUNITY_GATEWAY_MQTT_BASE_TOPIC": topics.base,
            "ECOMMUNITY_GATEWAY_MQTT_DISCOVERY_PREFIX": topics.discovery,
            "ECOMMUNITY_GATEWAY_MQTT_INTERVAL_S": "0.5",
        },
    )  # fmt: skip
    try:
        status = wait_until(
            lambda: (s := gateway.get("/api/v1/status").json())["mqtt"]["published"] >= 3 and s,
            15,
            "states published over MQTT",
        )
        assert status["mqtt"]["connected"] is True
        gateway_id = status["gateway_id"]

        async def observe() -> tuple[dict[str, dict[str, object]], dict[str, object], str]:
            patterns = (f"{topics.discovery}/#", f"{topics.base}/#")
            async with watching(*patterns) as watcher:
                # Retained: a subscriber that comes later (Home Assistant restarting) sees all.
                await watcher.wait_for(
                    lambda seen: (
                        any(m.topic.endswith("/state") for m in seen)
                        and any(m.topic.endswith("/availability") for m in seen)
                    )
                )
                configs = {m.topic: m.json for m in watcher.messages if m.topic.endswith("/config")}
                state = [m for m in watcher.messages if m.topic.endswith("/state")][-1]
                online = [m for m in watcher.messages if m.topic.endswith("/availability")]
                return configs, state.json, online[-1].payload.decode()

        configs, state, availability = asyncio.run(observe())
        assert availability == "online"
        energy = [c for c in configs.values() if c.get("device_class") == "energy"]
        assert {c["state_class"] for c in energy} == {"total_increasing"}
        assert len(energy) >= 2  # import and export
        assert all(c["availability_topic"].endswith(f"{gateway_id}/availability") for c in energy)
        # The state carries the meter's counters as the gateway stored them.
        latest = gateway.get("/api/v1/readings/latest").json()
        assert isinstance(state["energy_import_wh"], int)
        assert 12_000_000 <= state["energy_import_wh"] <= latest["energy_import_wh"]
        assert (state["energy_import_wh"] - 12_000_000) % 3 == 0  # the fake meter's 3 Wh steps
        assert state["energy_export_wh"] - 4_000 == (state["energy_import_wh"] - 12_000_000) // 3
    finally:
        code = gateway.stop()
        meter.stop()
        pty.close()
    assert code == 0, gateway.logs()

    async def after_stop() -> str:
        async with watching(f"{topics.base}/+/availability") as watcher:
            await watcher.wait_for(lambda seen: bool(seen))
            return watcher.messages[-1].payload.decode()

    assert asyncio.run(after_stop()) == "offline"
