"""Check meter settings against the live meter before they are saved.

The setup page asks for a serial port, a profile and the key from the grid operator. A typo in
a 32-digit key is the most common setup mistake, and a silent one: the reader would run and
store nothing. So the settings are tried first: the port is opened with the profile's line
settings, the link is acknowledged as the reader does (an AMIS meter pushes its next frame only
after an E5), and the first frame decides: it decodes (the settings are right), it fails to
decrypt (wrong key), or no frame comes at all (wrong port, cable or IR head position).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import StrEnum

from ecommunity.gateway.serial_reader import PortOpener, open_serial_port
from ecommunity.meter import Profile, Reading, StreamDecoder

logger = logging.getLogger(__name__)

#: How long to wait for a frame. AMIS pushes every second, but a meter in search mode sends
#: SND_NKE only about once a minute, and some DLMS meters push every 10 s. [s]
DEFAULT_TIMEOUT_S = 30.0


class CheckResult(StrEnum):
    OK = "ok"
    WRONG_KEY = "wrong-key"
    NO_FRAMES = "no-frames"
    BAD_FRAMES = "bad-frames"
    PORT_ERROR = "port-error"


@dataclass(frozen=True)
class MeterCheck:
    """What the meter answered to the settings under test."""

    result: CheckResult
    #: For people: what happened and what to do.
    message: str
    #: The first decoded reading, when the check succeeded.
    reading: Reading | None = None
    #: Bad frames seen, by :attr:`MeterError.kind`.
    frame_errors: dict[str, int] | None = None

    @property
    def ok(self) -> bool:
        return self.result is CheckResult.OK


def check_meter(
    port_path: str,
    profile: Profile,
    key: bytes | None,
    auth_key: bytes | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    open_port: PortOpener = open_serial_port,
) -> MeterCheck:
    """Read ``port_path`` until the first frame decodes or fails to, at most ``timeout_s``.

    Blocking: call it from a thread. The port must not be open elsewhere (stop the reader
    first).

    Raises:
        ValueError: a key is not 16 bytes.
    """
    decoder = StreamDecoder(profile, key=key, auth_key=auth_key)
    try:
        port = open_port(port_path, profile.line, 0.1)
    except OSError as exc:  # serial.SerialException is an OSError
        return MeterCheck(CheckResult.PORT_ERROR, f"cannot open {port_path}: {exc}")
    errors: dict[str, int] = {}
    bytes_seen = 0
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            try:
                data = port.read(1)
                if data and port.in_waiting:
                    data += port.read(port.in_waiting)
                if not data:
                    continue
                bytes_seen += len(data)
                decoder.feed(data)
                reply = decoder.data_to_send()
                if reply:
                    port.write(reply)
            except OSError as exc:
                return MeterCheck(CheckResult.PORT_ERROR, f"lost {port_path}: {exc}")
            verdict = _verdict(decoder, errors)
            if verdict is not None:
                return verdict
    finally:
        try:
            port.close()
        except OSError as exc:
            logger.debug("closing %s failed: %s", port_path, exc)
    if errors:
        return MeterCheck(
            CheckResult.BAD_FRAMES,
            f"the meter sent {sum(errors.values())} frame(s) that do not fit the "
            f"{profile.name} profile ({_describe(errors)}): check the profile",
            frame_errors=errors,
        )
    if bytes_seen:
        return MeterCheck(
            CheckResult.NO_FRAMES,
            f"{bytes_seen} bytes but no complete frame in {timeout_s:.0f} s: check the "
            "profile and the line settings",
        )
    return MeterCheck(
        CheckResult.NO_FRAMES,
        f"no data from {port_path} in {timeout_s:.0f} s: check the port, the cable and the "
        "position of the reading head, and that the meter's customer interface is enabled",
    )


def _verdict(decoder: StreamDecoder, errors: dict[str, int]) -> MeterCheck | None:
    for reading in decoder:
        return MeterCheck(
            CheckResult.OK, "the key decrypts the meter's frames", reading, dict(errors)
        )
    for error in decoder.pop_errors():
        errors[error.kind] = errors.get(error.kind, 0) + 1
        if error.kind == "wrong-key":
            return MeterCheck(
                CheckResult.WRONG_KEY,
                "wrong key: the meter's frames do not decrypt with it. Check the key in the "
                "grid operator's letter or customer portal (32 hex digits).",
                frame_errors=dict(errors),
            )
        if error.kind == "missing-key":
            return MeterCheck(
                CheckResult.WRONG_KEY,
                "the meter's frames are encrypted: enter the key from the grid operator",
                frame_errors=dict(errors),
            )
        logger.debug("frame error while checking the meter: %s", error)
    return None


def _describe(errors: dict[str, int]) -> str:
    return ", ".join(f"{count} {kind}" for kind, count in sorted(errors.items()))
