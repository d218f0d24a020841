"""Start, watch and stop the demo: one cloud process, and per household a simulated meter (a
thread writing real encrypted frames into a pty) and a real gateway process reading it.

Everything a production installation does happens for real: the gateways pair through the
device grant (the demo confirms each code as the household's user would in the web app), upload
over their WebSocket with store-and-forward, and the cloud keeps the data in its embedded
SQLite database. Only the people are simulated.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import httpx

from ecommunity.demo.neighbourhood import (
    DEMO_PASSWORD,
    MEMBER_EMAIL,
    OPERATOR_EMAIL,
    Household,
    households,
)

logger = logging.getLogger(__name__)

#: How long the cloud may take to answer after it was started. [s]
CLOUD_START_TIMEOUT_S = 60.0
#: How long pairing every gateway may take. [s]
PAIRING_TIMEOUT_S = 120.0
# A pty has no parity: the gateways read the simulated meters at 8N1 (a real AMIS IR head needs
# 8E1; the bytes are the same).
_PTY_LINE = "9600-8N1"


class DemoError(Exception):
    """The demo cannot start or lost a part it needs; the message says which and why."""


@dataclass(frozen=True)
class DemoOptions:
    data_dir: Path
    port: int = 8000
    host: str = "127.0.0.1"
    households: int = 12


@dataclass
class _Home:
    household: Household
    pty_master: int
    pty_slave: int
    pty_path: str
    data_dir: Path
    thread: threading.Thread | None = None
    gateway: subprocess.Popen[bytes] | None = None
    started_at: datetime | None = None
    paired: bool = False

    def status(self) -> dict[str, Any]:
        """The gateway's ``status.json`` of this run (empty before it wrote one: a file left
        by an earlier run does not count)."""
        status = _status(self.data_dir) or {}
        started = status.get("started_at")
        if self.started_at is None or not isinstance(started, str):
            return {}
        return status if datetime.fromisoformat(started) >= self.started_at else {}


@dataclass
class Demo:
    """One run of ``ecommunity demo``; :meth:`run` blocks until SIGINT/SIGTERM."""

    options: DemoOptions
    out: TextIO = field(default_factory=lambda: sys.stdout)
    stop: threading.Event = field(default_factory=threading.Event)
    cloud: subprocess.Popen[bytes] | None = None
    homes: list[_Home] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)
    _steps: int = 6
    #: Without a terminal, the last progress line, printed once when the step ends.
    _last_progress: str = ""

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.options.host in ("0.0.0.0", "::", "") else self.options.host
        return f"http://{host}:{self.options.port}"

    def run(self) -> int:
        """Start everything, print ``ready: URL``, wait for a signal, stop everything.

        Raises:
            DemoError: a part could not start.
        """
        with self._signals():
            try:
                self._start()
                if self.stop.is_set():
                    return 0
                self._say(f"ready: {self.url}/")
                self._watch()
            finally:
                self._shutdown()
        return 0

    # -- start ------------------------------------------------------------------------------

    def _start(self) -> None:
        options = self.options
        (options.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        people = households(options.households)
        self._step(1, f"starting the cloud on {self.url} (data in {options.data_dir})")
        self._start_cloud()
        with httpx.Client(base_url=self.url, timeout=30) as api:
            self._step(2, f"signing in {len(people)} demo accounts")
            # Argon2 makes each sign-in cost the server ~0.5 s of CPU: use both cores.
            with ThreadPoolExecutor(max_workers=4) as pool:
                for person, token in zip(
                    people, pool.map(lambda person: _sign_in(api, person), people), strict=True
                ):
                    self.tokens[person.email] = token
            if self.stop.is_set():
                return
            self._step(3, f"starting {len(people)} simulated meters and gateways")
            for person in people:
                if self.stop.is_set():
                    return
                self._start_home(person)
            self._step(4, "pairing each gateway with its household's account (device grant)")
            self._pair_all(api)
            self._step(5, "setting up the demo community")
            self._set_up_community(api, people)
        self._step(6, "waiting for every meter to reach the cloud")
        self._wait_for_meters()
        self._say("")
        self._say(f"  Web app:   {self.url}/")
        self._say(f"  Member:    {MEMBER_EMAIL} / {DEMO_PASSWORD}")
        self._say(f"  Operator:  {OPERATOR_EMAIL} / {DEMO_PASSWORD}")
        self._say(f"  Logs:      {options.data_dir / 'logs'}")
        self._say("  Stop with Ctrl-C.")

    def _start_cloud(self) -> None:
        options = self.options
        env = _environment(
            ECOMMUNITY_CLOUD_PUBLIC_URL=self.url,
            ECOMMUNITY_CLOUD_DEVICE_POLL_INTERVAL_S="1",
        )
        self.cloud = _spawn(
            [*_ecommunity(), "cloud", "serve", "--host", options.host, "--port",
             str(options.port), "--data-dir", str(options.data_dir / "cloud")],
            env,
            options.data_dir / "logs" / "cloud.log",
        )  # fmt: skip
        deadline = time.monotonic() + CLOUD_START_TIMEOUT_S
        while not self.stop.is_set():
            if self.cloud.poll() is not None:
                raise DemoError(
                    f"the cloud exited with code {self.cloud.returncode}: "
                    f"{_tail(options.data_dir / 'logs' / 'cloud.log')}"
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + "/openapi.json", timeout=2).is_success:
                    return
            if time.monotonic() > deadline:
                raise DemoError(f"the cloud did not answer on {self.url} within 60 s")
            time.sleep(0.2)

    def _start_home(self, person: Household) -> None:
        from ecommunity.meter import get_profile
        from ecommunity.sim import (
            FdLine,
            MeterLink,
            Push,
            SimulatedHousehold,
            SimulatedMeter,
            Weather,
            open_pty,
        )

        pty = open_pty()
        data_dir = self.options.data_dir / "gateways" / f"household-{person.number}"
        home = _Home(person, pty.master, pty.slave, pty.path, data_dir)
        self.homes.append(home)
        profile = get_profile(person.profile)
        meter = SimulatedMeter(
            SimulatedHousehold(
                seed=person.seed,
                annual_kwh=person.annual_kwh,
                pv_kwp=person.pv_kwp,
                weather=Weather(2026),  # one sky over the whole neighbourhood
            ),
            profile,
            key=person.key,
        )

        def next_push() -> Push:
            return meter.push(datetime.fromtimestamp(round(time.time()), UTC))

        link = MeterLink(
            FdLine(pty.master, peer_fd=pty.slave),
            next_push,
            acknowledge=profile.acknowledge,
            interval_s=1.0,
            search_interval_s=2.0,
            align_to_clock=True,
        )
        home.thread = threading.Thread(
            target=link.run, args=(self.stop,), name=f"meter-{person.number}", daemon=True
        )
        home.thread.start()
        home.started_at = datetime.now(UTC)
        home.gateway = _spawn(
            [*_ecommunity(), "-v", "gateway", "run", "--serial-port", pty.path, "--profile",
             person.profile, "--line", _PTY_LINE, "--key", person.key.hex(), "--data-dir",
             str(data_dir), "--cloud-url", self.url, "--name", person.name,
             "--http-host", "127.0.0.1", "--http-port", "0", "--no-mdns"],
            _environment(
                ECOMMUNITY_GATEWAY_UPLINK_RETRY_INITIAL_S="0.5",
                ECOMMUNITY_GATEWAY_UPLINK_RETRY_MAX_S="10",
            ),
            self.options.data_dir / "logs" / f"gateway-{person.number}.log",
        )  # fmt: skip

    def _pair_all(self, api: httpx.Client) -> None:
        deadline = time.monotonic() + PAIRING_TIMEOUT_S
        confirmed: set[str] = set()
        while not self.stop.is_set():
            waiting = 0
            for home in self.homes:
                if home.paired:
                    continue
                status = home.status()
                self._check_alive(home)
                if status.get("uplink") is not None:
                    home.paired = True  # at once when paired in an earlier run
                    continue
                pairing = status.get("pairing") or {}
                code = pairing.get("user_code")
                if pairing.get("state") == "waiting_for_user" and code and code not in confirmed:
                    answer = api.post(
                        "/api/v1/devices/activate",
                        json={"user_code": code, "name": home.household.name},
                        headers=self._auth(home.household.email),
                    )
                    if answer.is_success:
                        confirmed.add(code)
                    else:
                        logger.warning("activating %s failed: %s", code, answer.text)
                waiting += 1
            paired = sum(home.paired for home in self.homes)
            self._progress(f"paired {paired}/{len(self.homes)}")
            if not waiting:
                self._progress_done()
                return
            if time.monotonic() > deadline:
                raise DemoError(
                    f"only {paired} of {len(self.homes)} gateways paired within "
                    f"{PAIRING_TIMEOUT_S:.0f} s; see {self.options.data_dir / 'logs'}"
                )
            time.sleep(0.3)

    def _set_up_community(self, api: httpx.Client, people: list[Household]) -> None:
        from ecommunity.demo.community import set_up_community

        operator = self._auth(OPERATOR_EMAIL)
        members = [(person, self._auth(person.email)) for person in people if not person.plant]
        plant = next(person for person in people if person.plant)
        summary = set_up_community(api, operator, members, plant)
        self._say(f"      {summary}")

    def _wait_for_meters(self) -> None:
        """Until every household's meter is known to the cloud (a gateway introduces its meters
        with their latest reading when it connects, or with the first one after)."""
        deadline = time.monotonic() + 120
        reporting: set[int] = set()
        with httpx.Client(base_url=self.url, timeout=30) as api:
            while not self.stop.is_set() and time.monotonic() < deadline:
                for home in self.homes:
                    self._check_alive(home)
                    number = home.household.number
                    if number in reporting:
                        continue
                    meters = api.get("/api/v1/meters", headers=self._auth(home.household.email))
                    if meters.is_success and meters.json():
                        reporting.add(number)
                self._progress(f"{len(reporting)}/{len(self.homes)} meters reporting")
                if len(reporting) == len(self.homes):
                    break
                self.stop.wait(1.0)
        self._progress_done()
        if len(reporting) < len(self.homes) and not self.stop.is_set():
            self._say("      (the others will appear as soon as their gateways upload)")

    # -- run and stop -----------------------------------------------------------------------

    def _watch(self) -> None:
        while not self.stop.wait(1.0):
            if self.cloud is not None and self.cloud.poll() is not None:
                raise DemoError(
                    f"the cloud exited with code {self.cloud.returncode}: "
                    f"{_tail(self.options.data_dir / 'logs' / 'cloud.log')}"
                )
            for home in self.homes:
                self._check_alive(home)

    def _check_alive(self, home: _Home) -> None:
        gateway = home.gateway
        if gateway is not None and gateway.poll() is not None and not self.stop.is_set():
            log = self.options.data_dir / "logs" / f"gateway-{home.household.number}.log"
            raise DemoError(
                f"the gateway of {home.household.name} exited with code {gateway.returncode}: "
                f"{_tail(log)}"
            )

    def _shutdown(self) -> None:
        self.stop.set()
        children = [home.gateway for home in self.homes if home.gateway is not None]
        if children:
            self._say(f"stopping {len(children)} gateways and the cloud…")
        for child in children:
            _terminate(child)
        for child in children:
            _wait(child)
        for home in self.homes:
            if home.thread is not None:
                home.thread.join(timeout=5)
            for fd in (home.pty_master, home.pty_slave):
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self.cloud is not None:
            _terminate(self.cloud)
            _wait(self.cloud)

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        def handle(signum: int, frame: FrameType | None) -> None:
            self.stop.set()

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # -- output -----------------------------------------------------------------------------

    def _auth(self, email: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[email]}"}

    def _step(self, number: int, text: str) -> None:
        self._say(f"[{number}/{self._steps}] {text}")

    def _progress(self, text: str) -> None:
        if self.out.isatty():
            self.out.write(f"\r      {text}   ")
            self.out.flush()
        else:
            self._last_progress = text

    def _progress_done(self) -> None:
        if self.out.isatty():
            self.out.write("\n")
        elif self._last_progress:
            self._say(f"      {self._last_progress}")
        self._last_progress = ""

    def _say(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.out.write(text + "\n")
            self.out.flush()


def _sign_in(api: httpx.Client, person: Household) -> str:
    """Register the account if it is new; log in; the bearer token."""
    answer = api.post(
        "/api/v1/auth/register",
        json={
            "email": person.email,
            "password": DEMO_PASSWORD,
            "display_name": person.display_name,
        },
    )
    if answer.status_code not in (200, 201, 409):
        raise DemoError(f"cannot register {person.email}: {answer.text}")
    login = api.post("/api/v1/auth/login", json={"email": person.email, "password": DEMO_PASSWORD})
    if not login.is_success:
        raise DemoError(f"cannot log in as {person.email}: {login.text}")
    token: str = login.json()["access_token"]
    return token


def _ecommunity() -> list[str]:
    return [sys.executable, "-m", "ecommunity"]


def _environment(**extra: str) -> dict[str, str]:
    # The demo's children take their settings from their flags and these, not from whatever
    # ECOMMUNITY_* variables the shell has.
    env = {name: value for name, value in os.environ.items() if not name.startswith("ECOMMUNITY_")}
    return env | extra


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        # A process group of its own: Ctrl-C in the terminal reaches the demo, which stops the
        # children in order, instead of every child at once.
        return subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip


def _terminate(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM)


def _wait(child: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    try:
        child.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _status(data_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((data_dir / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _tail(log: Path, lines: int = 5) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(log.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"
