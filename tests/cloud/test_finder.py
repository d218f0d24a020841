"""The finder's rule without a database: parsing ``near``, distances, the bounding box."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecommunity.cloud.finder import (
    Coordinates,
    area_id_fits,
    bounding_box,
    distance_km,
    is_area_bound,
    parse_near,
)
from ecommunity.community import CommunityKind

LINZ = Coordinates(48.3059, 14.2862)
VIENNA = Coordinates(48.2085, 16.3721)


def test_near_is_a_postal_code_or_coordinates() -> None:
    assert parse_near(" 4020 ") == "4020"
    assert parse_near("48.3059, 14.2862") == LINZ
    assert parse_near("-33.9,18.4") == Coordinates(-33.9, 18.4)


@pytest.mark.parametrize("text", ["", "0999", "40200", "4O20", "48.3", "91,14", "48,181", "a,b"])
def test_other_text_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(ValueError, match=r"postal code|out of range"):
        parse_near(text)


def test_distance_linz_vienna() -> None:
    # Linz main square to Vienna's Stephansplatz: about 155 km as the crow flies.
    assert distance_km(LINZ, VIENNA) == pytest.approx(154.9, abs=1.0)
    assert distance_km(LINZ, LINZ) == 0.0


coordinates = st.builds(
    Coordinates,
    st.floats(min_value=-89.0, max_value=89.0),
    st.floats(min_value=-179.0, max_value=179.0),
)


@given(centre=coordinates, other=coordinates, radius_km=st.floats(0.1, 2000.0))
def test_the_bounding_box_holds_every_point_within_the_radius(
    centre: Coordinates, other: Coordinates, radius_km: float
) -> None:
    box = bounding_box(centre, radius_km)
    if distance_km(centre, other) <= radius_km:
        assert box.min_latitude <= other.latitude <= box.max_latitude
        if box.min_longitude is not None and box.max_longitude is not None:
            assert box.min_longitude <= other.longitude <= box.max_longitude


def test_only_a_beg_is_joinable_anywhere() -> None:
    assert not is_area_bound(CommunityKind.BEG)
    assert all(is_area_bound(k) for k in CommunityKind if k is not CommunityKind.BEG)


def test_area_id_narrows_eegs_only() -> None:
    assert area_id_fits(CommunityKind.EEG_LOCAL, "T-117", "t-117")
    assert not area_id_fits(CommunityKind.EEG_REGIONAL, "UW-3", "UW-4")
    assert not area_id_fits(CommunityKind.EEG_LOCAL, None, "T-117")
    assert area_id_fits(CommunityKind.EEG_LOCAL, None, None)
    assert area_id_fits(CommunityKind.GEA, None, "T-117")
    assert area_id_fits(CommunityKind.BEG, None, "T-117")
