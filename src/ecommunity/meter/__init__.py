"""Decode and encode the customer-interface frames of Austrian smart meters. Sans-IO.

Bytes in, :class:`Reading` objects out: AMIS (Netz OÖ, M-Bus + AES-CBC) and DLMS/COSEM
push (AES-128-GCM over M-Bus or HDLC, and DSMR text in GCM). No serial port, no clock:
callers feed bytes from wherever they come and write back :meth:`StreamDecoder.data_to_send`.
"""

from __future__ import annotations

import logging

from ecommunity.meter._amis import decode_amis, encode_amis
from ecommunity.meter._dlms import Keys, decode_apdu
from ecommunity.meter._encode import encode_dlms
from ecommunity.meter._errors import (
    AuthenticationError,
    ChecksumError,
    DecryptionError,
    FramingError,
    MeterError,
    MissingKeyError,
    PayloadError,
    UnsupportedLayoutError,
    WrongKeyError,
)
from ecommunity.meter._mbus import ACK, SND_NKE_AMIS
from ecommunity.meter._obis import format_obis, parse_obis
from ecommunity.meter._profiles import (
    PROFILES,
    Layout,
    LineSettings,
    Position,
    Profile,
    Transport,
    get_profile,
)
from ecommunity.meter._reading import ObisValue, Reading, TagCheck
from ecommunity.meter._stream import DecoderStats, StreamDecoder

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "ACK",
    "PROFILES",
    "SND_NKE_AMIS",
    "AuthenticationError",
    "ChecksumError",
    "DecoderStats",
    "DecryptionError",
    "FramingError",
    "Keys",
    "Layout",
    "LineSettings",
    "MeterError",
    "MissingKeyError",
    "ObisValue",
    "PayloadError",
    "Position",
    "Profile",
    "Reading",
    "StreamDecoder",
    "TagCheck",
    "Transport",
    "UnsupportedLayoutError",
    "WrongKeyError",
    "decode_amis",
    "decode_apdu",
    "encode_amis",
    "encode_dlms",
    "format_obis",
    "get_profile",
    "parse_obis",
]
