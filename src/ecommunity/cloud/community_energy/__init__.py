"""A community's energy accounts: the grid operator's official 15-minute values (format, checks),
our own allocation of them, reconciliation against the members' gateway data, and each member's
figures per day and month. Database access goes through ``cloud.db``; writes through
``cloud.actions.energy_import``."""
