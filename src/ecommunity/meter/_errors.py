"""The exceptions of the meter library: one base class, one subclass per failure kind."""

from __future__ import annotations


class MeterError(Exception):
    """Base class of every error the meter library raises."""

    #: Short machine-readable kind, used for counters and ``--json`` output.
    kind = "meter"


class FramingError(MeterError):
    """The bytes do not form a valid frame (bad start/stop byte, length or structure)."""

    kind = "framing"


class ChecksumError(FramingError):
    """A frame's checksum or CRC does not match its content."""

    kind = "checksum"

    def __init__(self, what: str, expected: int, actual: int) -> None:
        super().__init__(f"{what} mismatch: frame says 0x{actual:04X}, computed 0x{expected:04X}")
        self.expected = expected
        self.actual = actual


class DecryptionError(MeterError):
    """The payload could not be decrypted (missing key, wrong key or bad authentication tag)."""

    kind = "decryption"


class MissingKeyError(DecryptionError):
    """The frame is encrypted but no key was given."""

    kind = "missing-key"


class WrongKeyError(DecryptionError):
    """The key does not fit: the plaintext fails its check (AMIS 2F2F, DLMS APDU, DSMR CRC)."""

    kind = "wrong-key"


class AuthenticationError(DecryptionError):
    """The GCM authentication tag does not verify and the caller asked for verified frames only."""

    kind = "authentication"


class PayloadError(MeterError):
    """The decrypted payload is malformed (truncated A-XDR, bad record, bad date)."""

    kind = "payload"


class UnsupportedLayoutError(MeterError):
    """The frame is valid but its layout is not one we know how to map to values."""

    kind = "unsupported-layout"
