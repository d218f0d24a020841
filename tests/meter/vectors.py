"""The real meter frames of tests/data/meter-vectors, with what each one must decode to."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecommunity.meter import Profile, get_profile

VECTOR_DIR = Path(__file__).resolve().parent.parent / "data" / "meter-vectors"

#: Operator profiles for the vectors whose layout needs one (positional, DSMR, flat triples).
PROFILE_OF: dict[str, str] = {
    "lg-e450-netzburgenland": "netzburgenland",
    "siemens-im350-wienernetze": "wienernetze",
    "iskra-am550-wienernetze": "wienernetze",
    "lg-e450-wienernetze": "wienernetze",
    "kaifa-netznoe-official-example": "netznoe",
    "kaifa-salzburgnetz-decrypted-apdu": "salzburgnetz",
    "sagemcom-t210dr-energiesteiermark-p1": "energienetze-steiermark",
    "lg-e450-hdlc-gbt-1": "dlms-hdlc",
    "iskra-am550-hdlc-plain": "dlms-hdlc",
    "amis-netzooe-spec-example": "amis",
    "amis-drvolcano-sample": "amis",
    "amis-vzlogger-mock": "amis",
}
#: Vectors that are a bare plaintext APDU (transport and ciphering already removed).
BARE_APDU = {"kaifa-salzburgnetz-decrypted-apdu"}


@dataclass(frozen=True)
class Vector:
    id: str
    file: str
    frames: list[bytes]
    key: bytes | None
    auth_key: bytes | None
    raw: dict[str, Any]

    @property
    def wire(self) -> bytes:
        return b"".join(self.frames)

    @property
    def profile(self) -> Profile:
        return get_profile(PROFILE_OF[self.id])

    @property
    def is_amis(self) -> bool:
        return str(self.raw["protocol"]).startswith("mbus-sndud")

    def expected_per_reading(self) -> list[dict[str, Any]]:
        """Expected values for each reading in order (multi-telegram vectors nest them)."""
        expected: dict[str, Any] = self.raw["expected"]
        if all(isinstance(v, dict) and "value" not in v for v in expected.values()):
            return list(expected.values())
        return [expected]


def load_vectors() -> list[Vector]:
    vectors = []
    for path in sorted(VECTOR_DIR.glob("*.json")):
        for raw in json.loads(path.read_text())["vectors"]:
            vectors.append(
                Vector(
                    id=raw["id"],
                    file=path.name,
                    frames=[bytes.fromhex(h) for h in raw["frames_hex"]],
                    key=bytes.fromhex(raw["key_hex"]) if raw["key_hex"] else None,
                    auth_key=bytes.fromhex(raw["auth_key_hex"]) if raw["auth_key_hex"] else None,
                    raw=raw,
                )
            )
    return vectors


VECTORS = load_vectors()
