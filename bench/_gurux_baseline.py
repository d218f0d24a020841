"""Baseline for the DLMS decoder benchmark: the same push frames decoded by ``gurux-dlms``.

One ``GXDLMSSecureClient`` is built per vector up front (interface type from the transport,
block cipher key and authentication key from the vector) and reused for every push. A push is
decoded the way gurux's push-listener example does it: each wire frame goes through
``client.getData(frame, reply, notify)`` and the pushed values end up in ``notify.value``
(gurux handles HDLC / wired M-Bus framing, HDLC segmentation, General-Block-Transfer and
general-glo-ciphering itself).

Gurux quirks (gurux-dlms 1.0.203) this module works around or that the benchmark should know:

* ``GXDLMSChippering.decryptAesGcm`` prints "Encryption is applied." (and, for SC 0x3x,
  "Authentication is applied.") to stdout on every ciphered APDU. Wrap timed loops in
  :func:`quiet_gurux` (one ``redirect_stdout`` to ``os.devnull`` around the whole loop).
* Gurux never checks the GCM tag on decryption (it runs its GCM stream in "encrypt" mode, which
  only computes a tag); a frame with a corrupted tag decodes without error. Gurux therefore does
  less work than a decoder that verifies tags.
* Wired M-Bus: gurux leaves the checksum and stop byte (``CS 16``) of each long frame in the
  receive buffer and then fails to find the next ``68`` start byte, so the frames of a multi-
  segment push must be passed as separate buffers (done here), not concatenated.
* The Energienetze Steiermark P1 vector carries a DSMR text inside general-glo-ciphering; gurux
  decrypts it and then fails with "Invalid Command." on the plaintext. For such vectors the
  decoder runs in decrypt-only mode (``GXCiphering.decrypt``) and returns ``[plaintext]``;
  :func:`supported` reports them as unsupported so they stay out of the value comparison.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gurux_dlms import GXByteBuffer, GXReplyData
from gurux_dlms.AesGcmParameter import AesGcmParameter
from gurux_dlms.enums import InterfaceType, Security
from gurux_dlms.GXCiphering import GXCiphering
from gurux_dlms.secure import GXDLMSSecureClient

__all__ = ["GuruxDecoder", "load_dlms_vectors", "quiet_gurux", "supported"]

VECTOR_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "meter-vectors"

_INTERFACE_BY_START_BYTE = {
    0x7E: InterfaceType.HDLC,
    0x68: InterfaceType.WIRED_MBUS,
}
_GENERAL_GLO_CIPHERING = 0xDB


def is_dlms(vector: dict[str, Any]) -> bool:
    """DLMS vectors are all but the AMIS (``mbus-sndud...``) ones."""
    return not str(vector["protocol"]).startswith("mbus-sndud")


def _is_dsmr_in_gcm(vector: dict[str, Any]) -> bool:
    return "expected_plaintext_dsmr" in vector or "dsmr" in str(vector["protocol"]).lower()


def supported(vector: dict[str, Any]) -> bool:
    """True if gurux decrypts *and* extracts the pushed values of this vector."""
    return is_dlms(vector) and not _is_dsmr_in_gcm(vector)


def _key(hex_key: str | None) -> bytearray | None:
    return bytearray.fromhex(hex_key) if hex_key else None


class GuruxDecoder:
    """Reusable gurux client for the pushes of one vector."""

    def __init__(self, vector: dict[str, Any]) -> None:
        if not is_dlms(vector):
            raise ValueError(f"{vector['id']}: not a DLMS vector")
        first = bytes.fromhex(vector["frames_hex"][0])
        self.vector_id: str = vector["id"]
        self.decrypt_only: bool = _is_dsmr_in_gcm(vector)
        interface = _INTERFACE_BY_START_BYTE.get(first[0], InterfaceType.PDU)
        self.client = GXDLMSSecureClient(True, interfaceType=interface)
        cipher = self.client.ciphering
        block_key = _key(vector.get("key_hex"))
        auth_key = _key(vector.get("auth_key_hex"))
        if block_key is not None:
            cipher.blockCipherKey = block_key
            cipher.security = (
                Security.AUTHENTICATION_ENCRYPTION if auth_key is not None else Security.ENCRYPTION
            )
        if auth_key is not None:
            cipher.authenticationKey = auth_key
        if self.decrypt_only and (block_key is None or first[0] != _GENERAL_GLO_CIPHERING):
            raise ValueError(f"{self.vector_id}: decrypt-only mode needs a bare ciphered APDU")

    def decode(self, frames: Sequence[bytes]) -> list[Any]:
        """Decrypt one push and return the values of its DATA-NOTIFICATION body."""
        if self.decrypt_only:
            return [self._decrypt(frames[0])]
        client = self.client
        reply = GXReplyData()
        notify = GXReplyData()
        for frame in frames:
            # One buffer per frame: see the wired M-Bus note in the module docstring.
            client.getData(frame, reply, notify)
        if not notify.complete or notify.isMoreData():
            raise ValueError(f"{self.vector_id}: gurux did not complete the notification")
        value = notify.value
        return value if isinstance(value, list) else [value]

    def _decrypt(self, apdu: bytes) -> bytes:
        cipher = self.client.ciphering
        param = AesGcmParameter(0, None, cipher.blockCipherKey, cipher.authenticationKey)
        return bytes(GXCiphering.decrypt(self.client.settings, param, GXByteBuffer(apdu)))


@contextlib.contextmanager
def quiet_gurux() -> Iterator[None]:
    """Send gurux's per-call prints to /dev/null; enter once around a whole timed loop."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


def load_dlms_vectors(directory: Path = VECTOR_DIR) -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.json")):
        vectors.extend(v for v in json.loads(path.read_text())["vectors"] if is_dlms(v))
    return vectors


# --------------------------------------------------------------------------- self-check


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


def _missing_expected(vector: dict[str, Any], values: list[Any]) -> list[str]:
    """Expected numbers/strings not found among the raw values (scalers 10^0..10^-3 allowed)."""
    flat = list(_flatten(values))
    numbers = [v for v in flat if isinstance(v, int) and not isinstance(v, bool)]
    texts = {bytes(v) for v in flat if isinstance(v, bytes | bytearray)}
    wanted: list[tuple[str, Any]] = []
    for obis, entry in vector["expected"].items():
        value = entry["value"]
        if isinstance(value, list):
            wanted.extend((f"{obis}[{i}]", item) for i, item in enumerate(value))
        elif obis != "0.0.1.0.0.255":  # clock: gurux returns the raw octet-string
            wanted.append((obis, value))
    missing: list[str] = []
    for name, value in wanted:
        if isinstance(value, str):
            found = value.encode() in texts
        else:
            found = any(abs(n - value * 10**k) < 1e-6 for n in numbers for k in range(4))
        if not found:
            missing.append(f"{name}={value!r}")
    return missing


def _rate(decoder: GuruxDecoder, frames: list[bytes], seconds: float) -> tuple[float, float]:
    """(pushes/s, frames/s) over about ``seconds`` of repeated decoding."""
    decode = decoder.decode
    pushes = 0
    with quiet_gurux():
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(10):
                decode(frames)
            pushes += 10
            now = time.perf_counter()
            if now >= deadline:
                break
    elapsed = now - start
    return pushes / elapsed, pushes * len(frames) / elapsed


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    failures = 0
    for vector in load_dlms_vectors():
        frames = [bytes.fromhex(f) for f in vector["frames_hex"]]
        decoder = GuruxDecoder(vector)
        with quiet_gurux():
            values = decoder.decode(frames)
        print(f"== {vector['id']}  ({len(frames)} frame(s), supported={supported(vector)})")
        if decoder.decrypt_only:
            text = values[0].decode("ascii", "replace")
            ok = text == vector.get("expected_plaintext_dsmr", text) and "1-0:1.8.0(" in text
            print(f"   decrypt only, {len(text)} chars: {text[:60]!r}...")
            problem = [] if ok else ["decrypted text differs from expected_plaintext_dsmr"]
        else:
            print(f"   values: {values}")
            problem = _missing_expected(vector, values)
        if problem:
            failures += 1
            print(f"   FAIL, not found: {problem}")
        pushes_s, frames_s = _rate(decoder, frames, seconds)
        print(f"   {frames_s:10.1f} frames/s  ({pushes_s:.1f} pushes/s)")
    print("self-check", "FAILED" if failures else "ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
