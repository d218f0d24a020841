"""``ecommunity sim meter`` as a real process, read by the real ``ecommunity meter read``."""

from __future__ import annotations

import itertools
import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

from ecommunity.meter import Reading, StreamDecoder, get_profile
from ecommunity.sim import DEMO_KEY, open_pty

KEY_HEX = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ecommunity", *args]


@contextmanager
def process(*args: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        _command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def read_line(stream: IO[str], timeout_s: float = 10.0) -> str:
    ready, _, _ = select.select([stream], [], [], timeout_s)
    assert ready, f"no output within {timeout_s} s"
    return stream.readline()


def stop(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    return proc.returncode, out, err


def stored(db: Path) -> list[tuple[int, int, int, int, int]]:
    if not db.exists():
        return []
    connection = sqlite3.connect(db)
    try:
        return connection.execute(
            "SELECT meter_timestamp_ms, energy_import_wh, energy_export_wh, power_import_w, "
            "power_export_w FROM readings ORDER BY meter_timestamp_ms"
        ).fetchall()
    except sqlite3.OperationalError:  # the reader is still creating its schema
        return []
    finally:
        connection.close()


def wait_for_rows(db: Path, count: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(stored(db)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} readings stored"
        time.sleep(0.1)


AUTH = ["--auth-key", "AABBCCDDEEFF00112233445566778899"]


@pytest.mark.parametrize(
    ("profile", "line", "sim_extra", "reader_extra"),
    [
        ("amis", "9600-8N1", ["--pv-kwp", "6"], []),
        ("wienernetze", "9600-8N1", [], []),
        ("netznoe", "2400-8N1", ["--pv-kwp", "3", *AUTH], AUTH),
    ],
)
def test_a_reader_stores_what_the_simulated_meter_sends(
    tmp_path: Path, profile: str, line: str, sim_extra: list[str], reader_extra: list[str]
) -> None:
    db = tmp_path / "readings.sqlite3"
    link = tmp_path / "meter-port"
    sim_args = ["sim", "meter", "--profile", profile, "--create-pty", "--port", str(link)]
    sim_args += ["--key", KEY_HEX, "--seed", "12", "--search-interval-s", "0.3", "--json"]
    with process(*sim_args, *sim_extra) as sim:
        assert read_line(sim.stdout) == f"ready: {link}\n"  # type: ignore[arg-type]
        assert link.is_symlink()
        assert os.readlink(link).startswith("/dev/pts/")
        reader_args = ["meter", "read", "--port", str(link), "--profile", profile]
        reader_args += ["--line", line, "--key", KEY_HEX, "--db", str(db), "--json"]
        reader_args += reader_extra
        with process(*reader_args) as reader:
            wait_for_rows(db, 4)
            reader_code, reader_out, reader_err = stop(reader)
        sim_code, sim_out, sim_err = stop(sim)
    assert reader_code == 0, reader_err
    assert "0 bad frames" in reader_err
    assert sim_code == 0, sim_err
    assert "pushes sent" in sim_err
    assert not link.exists()  # the link goes with the simulator

    sent = [json.loads(row) for row in sim_out.splitlines()]
    read = [json.loads(row) for row in reader_out.splitlines()]
    rows = stored(db)
    assert len(rows) >= 4
    assert len(read) == len(rows)
    by_time = {row["meter_timestamp"]: row for row in sent}
    for row in read:
        expected = by_time[row["meter_timestamp"]]
        for field in ("energy_import_wh", "energy_export_wh", "power_import_w", "power_export_w"):
            assert row[field] == expected[field]
        assert row["meter_id"] == expected["meter_id"]
        assert expected["sim"]["load_w"] >= 0
        assert expected["sim"]["pv_w"] >= 0
    imports = [r[1] for r in rows]
    assert imports == sorted(imports)
    times = [r[0] for r in rows]
    assert times == sorted(set(times))
    assert all(b - a >= 1000 for a, b in itertools.pairwise(times))  # whole seconds


def test_writing_to_an_existing_port(tmp_path: Path) -> None:
    """Without --create-pty the simulator opens the tty it is given (one end of a pty made
    here): this test is the reader on the other end, acknowledging as a gateway does."""
    pair = open_pty()
    decoder = StreamDecoder(get_profile("amis"), key=DEMO_KEY)
    readings: list[Reading] = []
    try:
        args = ["sim", "meter", "--port", pair.path, "--search-interval-s", "0.2", "--json"]
        with process(*args) as sim:
            assert read_line(sim.stdout) == f"ready: {pair.path}\n"  # type: ignore[arg-type]
            deadline = time.monotonic() + 15
            while len(readings) < 3 and time.monotonic() < deadline:
                if select.select([pair.master], [], [], 0.1)[0]:
                    decoder.feed(os.read(pair.master, 4096))
                    readings += list(decoder)
                    os.write(pair.master, decoder.data_to_send())
            code, out, err = stop(sim)
    finally:
        pair.close()
    assert code == 0, err
    assert len(readings) >= 3
    assert decoder.pop_errors() == []
    printed = {row["meter_timestamp"]: row for row in map(json.loads, out.splitlines())}
    for reading in readings:
        assert reading.meter_timestamp is not None
        row = printed[reading.meter_timestamp.isoformat()]
        assert row["energy_import_wh"] == reading.energy_import_wh
        assert row["power_import_w"] == reading.power_import_w


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sim", "meter"], "--port PATH) or --create-pty"),
        (["sim", "meter", "--create-pty", "--profile", "nope"], "nope"),
        (["sim", "meter", "--create-pty", "--annual-kwh", "-5"], "--annual-kwh"),
        (["sim", "meter", "--create-pty", "--pv-kwp", "nan"], "--pv-kwp"),
        (["sim", "meter", "--create-pty", "--interval-s", "0.5"], "at least 1 s"),
        (["sim", "meter", "--create-pty", "--key", "00"], "16 bytes"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = subprocess.run(_command(*args), capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr


def test_without_json_only_the_ready_line_is_printed(tmp_path: Path) -> None:
    """A caller may leave stdout unread: nothing but the ready line goes there."""
    with process("sim", "meter", "--create-pty", "--search-interval-s", "0.2") as sim:
        ready = read_line(sim.stdout)  # type: ignore[arg-type]
        path = ready.removeprefix("ready: ").strip()
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        try:
            decoder = StreamDecoder(get_profile("amis"), key=DEMO_KEY)
            deadline = time.monotonic() + 10
            while decoder.stats.frames < 3 and time.monotonic() < deadline:
                if select.select([fd], [], [], 0.1)[0]:
                    decoder.feed(os.read(fd, 4096))
                    os.write(fd, decoder.data_to_send())
        finally:
            os.close(fd)
        code, out, err = stop(sim)
    assert code == 0, err
    assert decoder.stats.frames >= 3
    assert out == ""
    assert "acknowledged" in err


def test_a_link_in_a_missing_directory_is_a_runtime_failure(tmp_path: Path) -> None:
    link = tmp_path / "no" / "such" / "dir" / "meter"
    result = subprocess.run(
        _command("sim", "meter", "--create-pty", "--port", str(link)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "cannot make the link" in result.stderr


def test_a_missing_port_is_a_runtime_failure(tmp_path: Path) -> None:
    result = subprocess.run(
        _command("sim", "meter", "--port", str(tmp_path / "nothing")),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "cannot open" in result.stderr
