"""The implementations behind ``ecommunity`` subcommands (imported lazily by :mod:`cli`)."""
