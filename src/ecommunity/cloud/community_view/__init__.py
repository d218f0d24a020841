"""A community seen through its members' own meters: the live view, the recent performance the
finder shows, and the yearly savings a user could expect there (compare).

Everything here is an estimate: the members' gateways measure each minute, the grid operator's
official 15-minute values arrive a day later (``cloud.community_energy`` imports them). Who takes
part with which factor is ``community_energy.participants``'; the allocation and the prices are
``ecommunity.community``'s; load and PV profiles come from ``ecommunity.forecast``.
"""
