"""From a complete DLMS APDU (ciphered or not) to a :class:`Reading`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ecommunity.meter import _ciphering, _dsmr
from ecommunity.meter import _obis as obis
from ecommunity.meter._errors import (
    AuthenticationError,
    MeterError,
    PayloadError,
    UnsupportedLayoutError,
    WrongKeyError,
)
from ecommunity.meter._layouts import label_body
from ecommunity.meter._notification import DATA_NOTIFICATION, decode_notification
from ecommunity.meter._profiles import Layout, Profile
from ecommunity.meter._reading import ObisValue, Reading, TagCheck


@dataclass(frozen=True, slots=True)
class Keys:
    """The keys of one meter: encryption (GUEK) and optional authentication (GAK)."""

    key: bytes | None = None
    auth_key: bytes | None = None
    #: Reject frames whose tag is present but does not verify (or cannot be checked).
    require_tag: bool = False


def decode_apdu(apdu: bytes, profile: Profile | None, keys: Keys) -> Reading:
    """Decode one complete APDU: general-glo-ciphering, DATA-NOTIFICATION or DSMR text.

    Raises:
        MissingKeyError: encrypted and no key.
        WrongKeyError: the plaintext is not a valid APDU/telegram (and no tag verified).
        AuthenticationError: ``require_tag`` and the tag did not verify.
        FramingError, PayloadError, UnsupportedLayoutError: malformed or unknown content.
    """
    name = profile.name if profile is not None else "auto"
    if apdu[:1] != bytes((_ciphering.GENERAL_GLO_CIPHERING,)):
        return _decode_plain(apdu, profile, name, TagCheck.NOT_PRESENT, None, None)
    ciphered = _ciphering.parse(apdu)
    plaintext, tag_check = _ciphering.decrypt(ciphered, keys.key, keys.auth_key)
    if keys.require_tag and tag_check is not TagCheck.VERIFIED:
        raise AuthenticationError(
            f"GCM tag {tag_check.value} (system title {ciphered.system_title.hex()}, "
            f"frame counter {ciphered.frame_counter}) and verified frames are required"
        )
    system_title = _format_system_title(ciphered.system_title)
    try:
        return _decode_plain(
            plaintext, profile, name, tag_check, system_title, ciphered.frame_counter
        )
    except UnsupportedLayoutError:
        raise
    except MeterError as exc:
        if tag_check is TagCheck.VERIFIED:
            raise  # the key is right: the content itself is bad
        raise WrongKeyError(
            f"wrong key: the decrypted payload is not a DLMS APDU or DSMR telegram ({exc}); "
            f"GCM tag {tag_check.value}, system title {ciphered.system_title.hex()}"
        ) from exc


def _decode_plain(
    apdu: bytes,
    profile: Profile | None,
    name: str,
    tag_check: TagCheck,
    system_title: str | None,
    frame_counter: int | None,
) -> Reading:
    if apdu[:1] == b"/" or (profile is not None and profile.layout is Layout.DSMR):
        values, _header = _dsmr.decode_telegram(apdu)
        return Reading.from_obis(
            name, values, tag_check=tag_check, frame_counter=frame_counter,
            fallback_meter_id=system_title,
        )  # fmt: skip
    if apdu[:1] != bytes((DATA_NOTIFICATION,)):
        # An HDLC frame may carry no information at all: an empty APDU is bad content too.
        tag = f"0x{apdu[0]:02X}" if apdu else "missing"
        raise PayloadError(f"APDU tag {tag} is not a DATA-NOTIFICATION")
    notification = decode_notification(apdu)
    labelled = label_body(notification.leaves, notification.compound, profile)
    timestamp: datetime | None = labelled.clock or notification.sent_at
    if timestamp is not None and obis.CLOCK not in labelled.values:
        labelled.values[obis.CLOCK] = ObisValue(timestamp, "")
    return Reading.from_obis(
        name,
        labelled.values,
        fallback_meter_id=system_title,
        meter_timestamp=timestamp,
        unmapped=tuple(labelled.unmapped),
        tag_check=tag_check,
        frame_counter=frame_counter,
    )


def _format_system_title(title: bytes) -> str:
    """``KFM`` + serial hex: the manufacturer's letters, then the device part."""
    prefix = title[:3]
    if prefix.isalpha() and prefix.isascii():
        return prefix.decode() + title[3:].hex().upper()
    return title.hex().upper()
