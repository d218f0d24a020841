"""One exception hierarchy for the community domain: every error derives from CommunityError."""

from __future__ import annotations


class CommunityError(Exception):
    """Base of every error raised by :mod:`ecommunity.community`."""


class MeteringPointError(CommunityError, ValueError):
    """A metering point number (Zählpunkt) that is not ``AT`` followed by 31 letters or digits."""


class ParticipationError(CommunityError):
    """A membership breaks the grid operators' participation rules (rules doc 1.3)."""


class ParticipationFactorError(ParticipationError, ValueError):
    """A participation factor (Teilnahmefaktor) that is not a whole percent from 1 to 100."""


class TooManyCommunitiesError(ParticipationError):
    """A metering point would take part in more than five communities at once."""


class ParticipationSumError(ParticipationError):
    """The participation factors of one metering point would add up to more than 100 %."""


class DuplicateParticipationError(ParticipationError):
    """A metering point would be in the same community twice at the same time."""


class RoleConflictError(ParticipationError):
    """A metering point listed both as consumer and as producer: it measures one direction."""


class ParticipationChangeError(ParticipationError):
    """A participation-factor change the grid operators do not accept (one a day, 09:00–17:00)."""


class IntervalError(CommunityError, ValueError):
    """An interval start that is naive or not on a 15-minute boundary."""


class AllocationInputError(CommunityError, ValueError):
    """Energies, participation factors or array shapes unfit for an allocation."""


class AllocationKeyError(AllocationInputError):
    """Static allocation keys that are negative, above 1, add up to more than 1 or too fine."""


class TariffError(CommunityError, ValueError):
    """A price or tariff that cannot be used exactly (too many decimals, negative, too large)."""


class MissingParameterError(TariffError, LookupError):
    """No dated parameter covers a day (or the rules doc gives none for that case)."""
