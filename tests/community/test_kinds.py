"""Community kinds and their fixed properties (rules doc 1.1)."""

from __future__ import annotations

import dataclasses

import pytest

from ecommunity.community import (
    AllocationModel,
    Community,
    CommunityError,
    CommunityKind,
    GenerationSource,
)


def test_kinds_follow_the_rules_doc() -> None:
    assert CommunityKind.EEG_LOCAL.scope_grid_levels == {6, 7}
    assert CommunityKind.EEG_REGIONAL.scope_grid_levels == {4, 5}
    assert CommunityKind.BEG.scope_grid_levels == set()
    assert CommunityKind.GEA.member_grid_levels == {7}
    assert CommunityKind.EEG_LOCAL.renewable_only
    assert CommunityKind.EEG_REGIONAL.renewable_only
    assert not CommunityKind.GEA.renewable_only
    assert not CommunityKind.BEG.renewable_only
    assert CommunityKind.BEG.legal_basis == "§ 16b ElWOG 2010"
    assert CommunityKind.GEA.legal_basis.startswith("§ 16a")


def test_member_grid_levels() -> None:
    local = Community(CommunityKind.EEG_LOCAL, AllocationModel.DYNAMIC)
    local.check_member_grid_level(7)
    with pytest.raises(CommunityError, match="grid level 6, 7, not 5"):
        local.check_member_grid_level(5)
    Community(CommunityKind.EEG_REGIONAL, AllocationModel.STATIC).check_member_grid_level(5)
    Community(CommunityKind.BEG, AllocationModel.STATIC).check_member_grid_level(3)


def test_eeg_takes_renewables_only() -> None:
    eeg = Community(CommunityKind.EEG_REGIONAL, AllocationModel.DYNAMIC)
    eeg.check_generation_source(GenerationSource.HYDRO)
    with pytest.raises(CommunityError, match="renewable generation only"):
        eeg.check_generation_source(GenerationSource.NON_RENEWABLE)
    Community(CommunityKind.BEG, AllocationModel.DYNAMIC).check_generation_source(
        GenerationSource.NON_RENEWABLE
    )


def test_model_is_fixed_per_community() -> None:
    community = Community(CommunityKind.GEA, AllocationModel.STATIC)
    with pytest.raises(dataclasses.FrozenInstanceError):
        community.model = AllocationModel.DYNAMIC  # type: ignore[misc]
