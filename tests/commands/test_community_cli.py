"""``ecommunity community allocate`` as an operator runs it: a real subprocess on small CSVs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "community"
INPUT = DATA / "community.csv"
KEYS = DATA / "keys.csv"
HEADER = "interval_start,metering_point,role,energy_wh,tf"
A = "AT0010000000000000001000000100001"
P1 = "AT0010000000000000001000000200001"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ecommunity", "community", "allocate", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


def test_dynamic_allocation_of_the_example() -> None:
    proc = run("--model", "dynamic", str(INPUT))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (DATA / "community-dynamic.expected.csv").read_text()
    assert "G.03 904 Wh" in proc.stderr
    assert "surplus P.01T 301 Wh" in proc.stderr
    assert "4 intervals, 3 consumers, 2 producers" in proc.stderr


def test_static_allocation_of_the_example_from_stdin() -> None:
    proc = run("--model", "static", "--keys", str(KEYS), "-", stdin=INPUT.read_text())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (DATA / "community-static.expected.csv").read_text()
    assert "G.03 763 Wh" in proc.stderr
    assert "surplus P.01T 442 Wh" in proc.stderr


def test_output_columns_per_role() -> None:
    lines = (DATA / "community-dynamic.expected.csv").read_text().splitlines()
    assert lines[0] == "interval_start,metering_point,role,g01t_wh,g02_wh,g03_wh,p01t_wh"
    # Interval 2 was given as 12:15+02:00: it comes out in UTC.
    assert f"2024-06-01T10:15:00Z,{A},consumer,50,200,50," in lines
    assert f"2024-06-01T10:15:00Z,{P1},producer,300,,,225" in lines


def test_json_has_rows_and_totals() -> None:
    proc = run("--model", "dynamic", "--json", str(INPUT))
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert document["model"] == "dynamic"
    assert document["totals"]["covered_wh"] == document["totals"]["credited_wh"] == 904
    assert len(document["rows"]) == 18
    producer = next(row for row in document["rows"] if row["role"] == "producer")
    assert producer["g02_wh"] is None
    assert producer["g03_wh"] is None
    assert proc.stderr == ""


def test_tf_column_may_be_left_out_and_keys_of_absent_points_are_surplus(
    tmp_path: Path,
) -> None:
    data = tmp_path / "in.csv"
    data.write_text(
        "interval_start,metering_point,role,energy_wh\n"
        f"2025-01-01T00:00:00+01:00,{A},consumer,500\n"
        f"2025-01-01T00:00:00+01:00,{P1},producer,300\n"
    )
    keys = tmp_path / "keys.csv"
    keys.write_text(f"metering_point,key\n{A},1/3\nAT0010000000000000001000000100009,0.5\n")
    proc = run("--model", "static", "--keys", str(keys), str(data))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1:] == [
        f"2024-12-31T23:00:00Z,{A},consumer,500,100,100,",
        f"2024-12-31T23:00:00Z,{P1},producer,300,,,200",
    ]


def test_empty_input_gives_an_empty_allocation(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_text(HEADER + "\n\n")
    proc = run("--model", "dynamic", str(data))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "interval_start,metering_point,role,g01t_wh,g02_wh,g03_wh,p01t_wh"
    assert "0 intervals" in proc.stderr
    assert "no consumption" in proc.stderr


GOOD = f"2024-06-01T10:00:00Z,{A},consumer,400,"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("interval,metering_point,role,energy_wh,tf\n", ":1: the header must be"),
        (f"{HEADER}\nyesterday,{A},consumer,1,\n", ":2: interval_start is ISO 8601"),
        (f"{HEADER}\n2024-06-01T10:00:00,{A},consumer,1,\n", ":2: interval start .* no UTC offset"),
        (f"{HEADER}\n2024-06-01T10:05:00Z,{A},consumer,1,\n", ":2: .*15-minute boundary"),
        (f"{HEADER}\n2024-06-01T10:00:00Z,,consumer,1,\n", ":2: empty metering_point"),
        (f"{HEADER}\n2024-06-01T10:00:00Z,{A},prosumer,1,\n", ":2: role is consumer or producer"),
        (f"{HEADER}\n{GOOD}\n2024-06-01T10:15:00Z,{A},consumer,1.5,\n", ":3: energy_wh is a whole"),
        (f"{HEADER}\n2024-06-01T10:00:00Z,{A},consumer,-3,\n", ":2: energy_wh is a whole"),
        (f"{HEADER}\n2024-06-01T10:00:00Z,{A},consumer,99999999999,\n", ":2: energy_wh is at most"),
        (f"{HEADER}\n2024-06-01T10:00:00Z,{A},consumer,1,101\n", ":2: tf is at most 100"),
        (f"{HEADER}\n2024-06-01T10:00:00Z,{A},consumer,1,half\n", ":2: tf is a whole number"),
        (f"{HEADER}\n{GOOD}\n\n{GOOD}\n", ":4: .* already has a value for this interval on line 2"),
        (
            f"{HEADER}\n{GOOD}\n2024-06-01T10:15:00Z,{A},producer,1,\n",
            ":3: .* is a consumer on line 2; a metering point measures one direction",
        ),
        (f"{HEADER}\n{GOOD},extra\n", ":2: 6 fields, the header has 5"),
        (f'{HEADER}\n"2024-06-01T10:00:00Z"x,{A},consumer,1,\n', ":2: not valid CSV"),
        (
            f"{HEADER}\n2024-06-01T10:00:00Z,{A},consumer,2147483647,\n"
            f"2024-06-01T10:00:00Z,{A[:-1]}2,consumer,1,\n",
            "above 2147483647 Wh",
        ),
        ("", "is empty; the header is"),
    ],
)
def test_malformed_input_is_refused_with_its_line(body: str, message: str, tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_text(body)
    proc = run("--model", "dynamic", str(data))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("ecommunity: error: ")
    assert len(proc.stderr.splitlines()) == 1
    assert re.search(message, proc.stderr), proc.stderr


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("metering_point,share\n", ":1: the header must be metering_point,key"),
        (f"metering_point,key\n{A},0.7\n{A[:-1]}2,0.4\n", "add up to 1.1, more than 1"),
        (f"metering_point,key\n{A},0.5\n", "no key for consumer AT0010000000000000001000000100002"),
        (f"metering_point,key\n{P1},0.5\n", ":2: .* is a producer; keys are for consumers"),
        (f"metering_point,key\n{A},lots\n", ":2: an allocation key is a number"),
        (f"metering_point,key\n{A},1.5\n", ":2: an allocation key is between 0 and 1"),
        (f"metering_point,key\n{A},0.1\n{A},0.1\n", ":3: .* already has a key on line 2"),
        ("metering_point,key\n,0.1\n", ":2: empty metering_point"),
        ("metering_point,key\nx,0.1,2\n", ":2: 3 fields, the header has 2"),
    ],
)
def test_malformed_keys_are_refused(keys: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "keys.csv"
    path.write_text(keys)
    proc = run("--model", "static", "--keys", str(path), str(INPUT))
    assert proc.returncode == 2, proc.stderr
    assert re.search(message, proc.stderr), proc.stderr


def test_usage_errors(tmp_path: Path) -> None:
    for args, message in (
        (["--model", "static", str(INPUT)], "--model static needs --keys"),
        (["--model", "dynamic", "--keys", str(KEYS), str(INPUT)], "--keys applies to"),
        (["--model", "dynamic", str(tmp_path / "missing.csv")], "cannot read"),
        (["--model", "both", str(INPUT)], "invalid choice"),
        ([str(INPUT)], "--model"),
    ):
        proc = run(*args)
        assert proc.returncode == 2, args
        assert message in proc.stderr
    binary = tmp_path / "latin1.csv"
    binary.write_bytes(HEADER.encode() + b"\n\xe4\n")
    proc = run("--model", "dynamic", str(binary))
    assert proc.returncode == 2
    assert "not UTF-8 text" in proc.stderr


def test_help() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    assert "INPUT.csv" in proc.stdout
    assert "--keys KEYS.csv" in proc.stdout
