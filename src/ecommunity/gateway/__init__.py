"""The gateway service that runs next to the meter: serial reader, local SQLite store, uplink.

Unlike :mod:`ecommunity.meter`, this package does I/O: it opens ports, reads the clock and
writes to disk, and feeds the sans-IO meter decoders with what it reads.
"""
