"""``ecommunity meter decode`` and ``meter profiles`` as a user runs them: a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.meter.vectors import VECTORS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "amis-netzooe-spec.hex"
SPEC_KEY = "00112233445566778899AABBCCDDEEFF"


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ecommunity", *args],
        input=stdin.decode("latin-1") if stdin is not None else None,
        capture_output=True,
        text=True,
        encoding="latin-1" if stdin is not None else None,
        timeout=60,
        check=False,
    )


def test_decode_bundled_example() -> None:
    proc = run("meter", "decode", "--key", SPEC_KEY, str(EXAMPLE))
    assert proc.returncode == 0, proc.stderr
    assert (
        proc.stdout.strip()
        == "2014-07-01 08:12:31+02:00  +A 684544 Wh  -A 129412 Wh  +P 0 W  -P 117 W"
    )


def test_decode_json_has_the_documented_fields() -> None:
    proc = run("meter", "decode", "--json", "--key", SPEC_KEY, str(EXAMPLE))
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    data = json.loads(line)
    assert data["meter_timestamp"] == "2014-07-01T08:12:31+02:00"
    assert (data["energy_import_wh"], data["energy_export_wh"]) == (684544, 129412)
    assert (data["power_import_w"], data["power_export_w"]) == (0, 117)
    assert data["obis"]["1.0.1.128.0.255"] == {"value": 20, "unit": "Wh"}


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS if v.id != "kaifa-salzburgnetz-decrypted-apdu"],
    ids=lambda v: v.id,
)
def test_decode_every_vector_from_stdin(vector: object, tmp_path: Path) -> None:
    from tests.meter.vectors import Vector

    assert isinstance(vector, Vector)
    hex_text = "\n".join(frame.hex() for frame in vector.frames)
    args = ["meter", "decode", "--json", "--profile", vector.profile.name]
    if vector.key:
        args += ["--key", vector.key.hex()]
    if vector.auth_key:
        args += ["--auth-key", vector.auth_key.hex()]
    proc = run(*args, "-", stdin=hex_text.encode())
    assert proc.returncode == 0, proc.stderr
    readings = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(readings) == len(vector.expected_per_reading())
    # And the same bytes raw with --binary.
    raw = tmp_path / "frames.bin"
    raw.write_bytes(vector.wire)
    proc = run(*args, "--binary", str(raw))
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line) for line in proc.stdout.splitlines()] == readings


def test_decode_bare_plaintext_apdu() -> None:
    vector = next(v for v in VECTORS if v.id == "kaifa-salzburgnetz-decrypted-apdu")
    proc = run("meter", "decode", "--json", "-", stdin=vector.wire.hex().encode())
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["obis"]["1.0.1.8.0.255"]["value"] == 1327456


def test_wrong_key_says_so_and_exits_1() -> None:
    proc = run("meter", "decode", "--key", "00" * 16, str(EXAMPLE))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "wrong key" in proc.stderr


def test_no_frame_in_input_exits_1(tmp_path: Path) -> None:
    junk = tmp_path / "junk.hex"
    junk.write_text("00 01 02 03\n")
    proc = run("meter", "decode", "--key", SPEC_KEY, str(junk))
    assert proc.returncode == 1
    assert "no meter frame" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["meter", "decode", "--key", "1234", str(EXAMPLE)], "16 bytes"),
        (
            ["meter", "decode", "--key", SPEC_KEY, "--profile", "nope", str(EXAMPLE)],
            "known profiles",
        ),
        (["meter", "decode", "--key", SPEC_KEY, "/nonexistent/file"], "cannot read"),
        (["meter", "decode", "--key", SPEC_KEY, str(ROOT / "README.md")], "not hex text"),
        (["meter"], "required"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_profiles_lists_line_settings() -> None:
    proc = run("meter", "profiles", "--json")
    assert proc.returncode == 0
    profiles = {p["name"]: p for p in json.loads(proc.stdout)}
    assert profiles["amis"]["line"] == {
        "baudrate": 9600,
        "bytesize": 8,
        "parity": "E",
        "stopbits": 1,
    }
    assert profiles["amis"]["acknowledge"] is True
    assert profiles["netznoe"]["line"]["baudrate"] == 2400
    text = run("meter", "profiles").stdout
    assert text.splitlines()[0].startswith("amis")


def test_help_and_version() -> None:
    assert run("--help").returncode == 0
    assert "decode" in run("meter", "--help").stdout
    assert run("--version").stdout.startswith("ecommunity ")
