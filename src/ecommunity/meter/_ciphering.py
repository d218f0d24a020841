"""DLMS general-glo-ciphering (APDU tag 0xDB): AES-128-GCM, security suite 0/1.

``DB | 08 | system title (8) | length | SC | frame counter (4) | ciphertext | [tag (12)]``
The IV is system title + frame counter. With SC 0x2x there is no tag and the cipher is GCM's
CTR part alone; with SC 0x3x the last 12 bytes are the tag over AAD = SC || authentication key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ecommunity.meter._axdr import decode_length, encode_length
from ecommunity.meter._errors import FramingError, MissingKeyError, PayloadError
from ecommunity.meter._reading import TagCheck

GENERAL_GLO_CIPHERING: Final = 0xDB
SC_AUTHENTICATED: Final = 0x10
SC_ENCRYPTED: Final = 0x20
TAG_LENGTH: Final = 12
#: Longest APDU we accept: bounds the stream buffer (meters push a few hundred bytes).
MAX_APDU: Final = 4096
#: GCM's first counter block for the payload: IV || 00000002 (00000001 is the tag's).
_CTR_START: Final = b"\x00\x00\x00\x02"


@dataclass(frozen=True, slots=True)
class GloCiphered:
    """The fields of a general-glo-ciphering APDU."""

    system_title: bytes
    security_control: int
    frame_counter: int
    ciphertext: bytes
    tag: bytes | None

    @property
    def iv(self) -> bytes:
        return self.system_title + self.frame_counter.to_bytes(4, "big")

    @property
    def encrypted(self) -> bool:
        return bool(self.security_control & SC_ENCRYPTED)


def measure_apdu(buf: bytes | bytearray, pos: int) -> int:
    """Length of a bare general-glo-ciphering APDU at ``buf[pos]`` (0: need more, -1: not one)."""
    available = len(buf) - pos
    if buf[pos] != GENERAL_GLO_CIPHERING:
        return -1
    if available < 11:
        return 0
    if buf[pos + 1] != 8:
        return -1
    first = buf[pos + 10]
    size = 1 if first < 0x80 else 1 + (first & 0x7F)
    if size > 3 or first == 0x80:  # 0x80 is not a definite BER length
        return -1
    if available < 10 + size + 1:
        return 0
    length = first if size == 1 else int.from_bytes(buf[pos + 11 : pos + 10 + size], "big")
    security_control = buf[pos + 10 + size]
    if security_control & 0xC0 or not security_control & 0x30 or length < 5:
        return -1
    total = 10 + size + length
    if total > MAX_APDU:
        return -1
    return total if available >= total else 0


def parse(apdu: bytes) -> GloCiphered:
    """Split a general-glo-ciphering APDU into its fields.

    Raises:
        FramingError: not tag 0xDB, or the length field does not fit the bytes.
    """
    if len(apdu) < 16 or apdu[0] != GENERAL_GLO_CIPHERING or apdu[1] != 8:
        raise FramingError(f"not a general-glo-ciphering APDU (starts {apdu[:2].hex()})")
    system_title = apdu[2:10]
    try:
        length, pos = decode_length(apdu, 10)
    except PayloadError as exc:
        raise FramingError(f"general-glo-ciphering length: {exc}") from None
    if pos + length != len(apdu) or length < 5:
        raise FramingError(
            f"general-glo-ciphering length {length} does not fit {len(apdu) - pos} bytes"
        )
    security_control = apdu[pos]
    frame_counter = int.from_bytes(apdu[pos + 1 : pos + 5], "big")
    payload = apdu[pos + 5 :]
    tag = None
    if security_control & SC_AUTHENTICATED:
        if len(payload) < TAG_LENGTH:
            raise FramingError("authenticated APDU shorter than its tag")
        payload, tag = payload[:-TAG_LENGTH], payload[-TAG_LENGTH:]
    return GloCiphered(system_title, security_control, frame_counter, payload, tag)


def decrypt(
    ciphered: GloCiphered, key: bytes | None, auth_key: bytes | None
) -> tuple[bytes, TagCheck]:
    """Decrypt, and check the tag where there is one and an authentication key is given.

    A failing tag is reported, not raised: the caller decides (the plaintext may still be
    good when only the authentication key is wrong, as on Energienetze Steiermark meters).

    Raises:
        MissingKeyError: the payload is encrypted and no key was given.
    """
    if not ciphered.encrypted:
        if ciphered.tag is None:
            return ciphered.ciphertext, TagCheck.NOT_PRESENT
        if auth_key is None or key is None:
            return ciphered.ciphertext, TagCheck.UNCHECKED
        ok = _verify_tag(ciphered, key, auth_key + ciphered.ciphertext, b"")
        return ciphered.ciphertext, TagCheck.VERIFIED if ok else TagCheck.FAILED
    if key is None:
        raise MissingKeyError(
            "the frame is encrypted (general-glo-ciphering): a 16-byte key is needed"
        )
    if ciphered.tag is not None and auth_key is not None:
        decryptor = Cipher(
            algorithms.AES(key), modes.GCM(ciphered.iv, ciphered.tag, min_tag_length=TAG_LENGTH)
        ).decryptor()
        decryptor.authenticate_additional_data(bytes((ciphered.security_control,)) + auth_key)
        plaintext = decryptor.update(ciphered.ciphertext)
        try:
            decryptor.finalize()
        except InvalidTag:
            return plaintext, TagCheck.FAILED
        return plaintext, TagCheck.VERIFIED
    ctr = Cipher(algorithms.AES(key), modes.CTR(ciphered.iv + _CTR_START)).decryptor()
    plaintext = ctr.update(ciphered.ciphertext) + ctr.finalize()
    return plaintext, TagCheck.NOT_PRESENT if ciphered.tag is None else TagCheck.UNCHECKED


def _verify_tag(ciphered: GloCiphered, key: bytes, aad_tail: bytes, payload: bytes) -> bool:
    assert ciphered.tag is not None
    decryptor = Cipher(
        algorithms.AES(key), modes.GCM(ciphered.iv, ciphered.tag, min_tag_length=TAG_LENGTH)
    ).decryptor()
    decryptor.authenticate_additional_data(bytes((ciphered.security_control,)) + aad_tail)
    decryptor.update(payload)
    try:
        decryptor.finalize()
    except InvalidTag:
        return False
    return True


def encrypt(
    plaintext: bytes,
    *,
    key: bytes,
    system_title: bytes,
    frame_counter: int,
    auth_key: bytes | None = None,
    security_suite: int = 0,
) -> bytes:
    """Build a general-glo-ciphering APDU: SC 0x30 with a tag when ``auth_key`` is given,
    else SC 0x20 (encryption only, as Netz NÖ and Wiener Netze meters send); the low bits
    carry the security suite (TINETZ meters send suite 1: SC 0x21)."""
    if len(system_title) != 8:
        raise ValueError("the system title has 8 bytes")
    if not 0 <= security_suite <= 0x0F:
        raise ValueError("the security suite is 0..15")
    iv = system_title + frame_counter.to_bytes(4, "big")
    if auth_key is None:
        security_control = SC_ENCRYPTED | security_suite
        ctr = Cipher(algorithms.AES(key), modes.CTR(iv + _CTR_START)).encryptor()
        payload = ctr.update(plaintext) + ctr.finalize()
    else:
        security_control = SC_ENCRYPTED | SC_AUTHENTICATED | security_suite
        encryptor = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
        encryptor.authenticate_additional_data(bytes((security_control,)) + auth_key)
        payload = encryptor.update(plaintext) + encryptor.finalize()
        payload += encryptor.tag[:TAG_LENGTH]
    body = bytes((security_control,)) + frame_counter.to_bytes(4, "big") + payload
    return bytes((GENERAL_GLO_CIPHERING, 8)) + system_title + encode_length(len(body)) + body
