"""Serial lines for a simulated meter: a new pty pair, or an existing tty opened raw."""

from __future__ import annotations

import contextlib
import logging
import os
import termios
import tty
from dataclasses import dataclass

from ecommunity.meter import LineSettings

logger = logging.getLogger(__name__)


@dataclass
class PtyPair:
    """Both ends of a pty: the meter writes to ``master``; a reader opens ``path``."""

    master: int
    slave: int
    path: str

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def open_pty() -> PtyPair:
    """A new pty pair with its reader's end raw.

    Raw at once: a cooked slave would echo the meter's bytes back before the reader opens it
    (pyserial then sets its own raw mode). Holding the slave open also keeps the master from
    reading EIO while no reader has the port open.
    """
    master, slave = os.openpty()
    tty.setraw(slave)
    return PtyPair(master, slave, os.ttyname(slave))


def open_port(path: str, line: LineSettings) -> int:
    """Open a tty (a serial adapter, or one end of a pty pair made elsewhere) raw.

    Sets the baud rate, byte size and parity of ``line``. A pty has no parity (Linux refuses
    PARENB on it): the port then stays at no parity, as a reader's 8N1 override expects.

    Raises:
        OSError: the port cannot be opened or is not a terminal.
    """
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        tty.setraw(fd)
        _set_line(fd, line)
    except (OSError, termios.error) as exc:
        os.close(fd)
        raise OSError(f"{path} is not a serial port: {exc}") from None
    return fd


def _set_line(fd: int, line: LineSettings) -> None:
    attributes = termios.tcgetattr(fd)
    speed = getattr(termios, f"B{line.baudrate}", None)
    if speed is not None:
        attributes[4] = attributes[5] = speed
    cflag = attributes[2] & ~(termios.CSIZE | termios.PARENB | termios.PARODD | termios.CSTOPB)
    cflag |= {5: termios.CS5, 6: termios.CS6, 7: termios.CS7, 8: termios.CS8}[line.bytesize]
    if line.stopbits == 2:
        cflag |= termios.CSTOPB
    attributes[2] = cflag
    termios.tcsetattr(fd, termios.TCSANOW, attributes)
    if line.parity == "N":
        return
    attributes[2] = cflag | termios.PARENB | (termios.PARODD if line.parity == "O" else 0)
    try:
        termios.tcsetattr(fd, termios.TCSANOW, attributes)
    except termios.error:
        logger.info("the port takes no parity (a pty?): sending %s without it", line)
