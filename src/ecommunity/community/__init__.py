"""Energy communities in Austria: kinds, memberships, 15-minute allocation, tariffs and savings.

Pure domain code (Python and NumPy): no web framework, database, event loop or I/O. The rules it
models, with their sources, are summarised in docs/community.md.
"""

from __future__ import annotations

import logging

from ecommunity.community.allocation import (
    MAX_INTERVAL_WH,
    Allocation,
    AllocationTotals,
    StaticKeys,
    allocate,
    participating_wh,
)
from ecommunity.community.errors import (
    AllocationInputError,
    AllocationKeyError,
    CommunityError,
    DuplicateParticipationError,
    IntervalError,
    MeteringPointError,
    MissingParameterError,
    ParticipationChangeError,
    ParticipationError,
    ParticipationFactorError,
    ParticipationSumError,
    RoleConflictError,
    TariffError,
    TooManyCommunitiesError,
)
from ecommunity.community.intervals import (
    INTERVAL,
    VIENNA,
    check_interval_start,
    epoch_seconds,
    regular_starts,
)
from ecommunity.community.kinds import (
    AllocationModel,
    Community,
    CommunityKind,
    GenerationSource,
    Role,
)
from ecommunity.community.membership import (
    MAX_COMMUNITIES_PER_METERING_POINT,
    Membership,
    check_participations,
    check_tf_percent,
    effective_tf_matrix,
    parse_metering_point,
    tf_change_effective_on,
)
from ecommunity.community.rounding import round_shares
from ecommunity.community.savings import (
    ConsumerSavings,
    ProducerRevenue,
    consumer_savings,
    nct_to_euro,
    producer_revenue,
)
from ecommunity.community.tariffs import (
    STATUTORY_PARAMETERS,
    CommunityPrices,
    ConsumerCategory,
    ConsumerTariff,
    Dated,
    ProducerTariff,
    Schedule,
    StatutoryParameters,
)

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "INTERVAL",
    "MAX_COMMUNITIES_PER_METERING_POINT",
    "MAX_INTERVAL_WH",
    "STATUTORY_PARAMETERS",
    "VIENNA",
    "Allocation",
    "AllocationInputError",
    "AllocationKeyError",
    "AllocationModel",
    "AllocationTotals",
    "Community",
    "CommunityError",
    "CommunityKind",
    "CommunityPrices",
    "ConsumerCategory",
    "ConsumerSavings",
    "ConsumerTariff",
    "Dated",
    "DuplicateParticipationError",
    "GenerationSource",
    "IntervalError",
    "Membership",
    "MeteringPointError",
    "MissingParameterError",
    "ParticipationChangeError",
    "ParticipationError",
    "ParticipationFactorError",
    "ParticipationSumError",
    "ProducerRevenue",
    "ProducerTariff",
    "Role",
    "RoleConflictError",
    "Schedule",
    "StaticKeys",
    "StatutoryParameters",
    "TariffError",
    "TooManyCommunitiesError",
    "allocate",
    "check_interval_start",
    "check_participations",
    "check_tf_percent",
    "consumer_savings",
    "effective_tf_matrix",
    "epoch_seconds",
    "nct_to_euro",
    "parse_metering_point",
    "participating_wh",
    "producer_revenue",
    "regular_starts",
    "round_shares",
    "tf_change_effective_on",
]
