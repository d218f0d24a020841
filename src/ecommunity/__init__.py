"""eCommunity: an open-source platform for Austrian renewable energy communities."""

__version__ = "0.1.0"
