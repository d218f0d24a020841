"""Which communities a user could join at an address: the finder's rule, free of SQL and HTTP.

An address is given as an Austrian postal code or as WGS 84 coordinates ("lat,lon").

- Postal code: a GEA or an EEG (local or regional) matches when its area lists the postal code.
  That is a necessary condition only. Who may join an EEG is decided by the grid: a local EEG
  takes the points behind the same transformer (grid levels 6–7), a regional one those below the
  same substation's medium-voltage busbar (levels 4–5), a GEA those on the same building's main
  line (rules doc 1.1). Postal codes do not carry that, so a match means "possible, the grid
  operator confirms"; when the user knows the local/regional area id of their metering point
  (the grid operators' portals show it), ``area_id`` narrows EEGs to the ones with that id.
- Coordinates: a GEA or an EEG matches when its location lies within ``radius_km`` along the
  great circle; the same caveat applies.
- A BEG matches everywhere in Austria (rules doc 1.1: no geographic limit), whatever the
  address.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum

from ecommunity.community import CommunityKind

#: Mean Earth radius (IUGG). [km]
EARTH_RADIUS_KM = 6371.0088
#: Austrian postal codes: four digits, 1010 (Vienna) to 9992.
POSTAL_CODE = re.compile(r"[1-9][0-9]{3}")
_COORDINATES = re.compile(r"\s*(-?\d{1,2}(?:\.\d{1,10})?)\s*,\s*(-?\d{1,3}(?:\.\d{1,10})?)\s*")


class Match(StrEnum):
    """Why a community is in the finder's answer."""

    #: The community's area lists the postal code (and the area id, when one was given).
    POSTAL_CODE = "postal_code"
    #: The community's location is within the radius.
    DISTANCE = "distance"
    #: A BEG: anyone in Austria may join.
    NATIONWIDE = "nationwide"
    #: No address given: every community that passes the other filters.
    ANY = "any"


@dataclass(frozen=True)
class Coordinates:
    """A point on the WGS 84 ellipsoid, treated as a sphere for distances. [°]"""

    latitude: float
    longitude: float


@dataclass(frozen=True)
class BoundingBox:
    """Latitude and longitude bounds that contain every point within a radius. [°]"""

    min_latitude: float
    max_latitude: float
    #: None when the box spans all longitudes (near a pole).
    min_longitude: float | None
    max_longitude: float | None


def parse_near(text: str) -> str | Coordinates:
    """A postal code (returned as text) or ``"lat,lon"`` in decimal degrees.

    Raises:
        ValueError: neither, or coordinates out of range.
    """
    value = text.strip()
    if POSTAL_CODE.fullmatch(value):
        return value
    found = _COORDINATES.fullmatch(value)
    if found is None:
        raise ValueError(
            "near is an Austrian postal code (4 digits, e.g. 4020) or 'lat,lon' in decimal "
            "degrees (e.g. 48.3069,14.2858)"
        )
    latitude, longitude = float(found.group(1)), float(found.group(2))
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise ValueError(f"coordinates out of range: latitude {latitude}, longitude {longitude}")
    return Coordinates(latitude, longitude)


def distance_km(a: Coordinates, b: Coordinates) -> float:
    """Great-circle distance (haversine formula on the mean Earth radius). [km]"""
    phi1, phi2 = math.radians(a.latitude), math.radians(b.latitude)
    d_phi = phi2 - phi1
    d_lambda = math.radians(b.longitude - a.longitude)
    h = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def bounding_box(centre: Coordinates, radius_km: float) -> BoundingBox:
    """A box around ``centre`` that holds the circle of ``radius_km``: a cheap prefilter for
    the database, refined by :func:`distance_km`."""
    d_lat = math.degrees(radius_km / EARTH_RADIUS_KM)
    min_lat, max_lat = centre.latitude - d_lat, centre.latitude + d_lat
    if min_lat <= -90 or max_lat >= 90:
        return BoundingBox(max(min_lat, -90.0), min(max_lat, 90.0), None, None)
    # The widest longitude span of the circle is at the latitude farthest from the equator.
    widest = max(abs(min_lat), abs(max_lat))
    d_lon = math.degrees(radius_km / (EARTH_RADIUS_KM * math.cos(math.radians(widest))))
    if d_lon >= 180:
        return BoundingBox(min_lat, max_lat, None, None)
    # A box that crosses the antimeridian is widened to all longitudes: rare, and still correct.
    min_lon, max_lon = centre.longitude - d_lon, centre.longitude + d_lon
    if min_lon < -180 or max_lon > 180:
        return BoundingBox(min_lat, max_lat, None, None)
    return BoundingBox(min_lat, max_lat, min_lon, max_lon)


def is_area_bound(kind: CommunityKind) -> bool:
    """Whether who may join depends on where (everything but a BEG)."""
    return kind is not CommunityKind.BEG


def area_id_fits(kind: CommunityKind, community_area_id: str | None, wanted: str | None) -> bool:
    """Whether an EEG's local/regional area id is the one asked for (always, if none was)."""
    if wanted is None or kind not in (CommunityKind.EEG_LOCAL, CommunityKind.EEG_REGIONAL):
        return True
    return community_area_id is not None and community_area_id.casefold() == wanted.casefold()
