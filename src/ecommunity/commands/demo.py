"""``ecommunity demo``: the whole platform on this machine with a simulated neighbourhood."""

from __future__ import annotations

import sys
from pathlib import Path

from ecommunity.cli import EXIT_FAILURE, UsageError


def demo_command(*, port: int, host: str, data_dir: str, households: int) -> int:
    """Run the demo until Ctrl-C/SIGTERM; 0 after a clean stop, 1 if a part failed."""
    from ecommunity.demo.runner import Demo, DemoError, DemoOptions

    if not 1 <= households <= 200:
        raise UsageError(f"--households must be between 1 and 200, got {households}")
    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be a TCP port (1-65535), got {port}")
    demo = Demo(DemoOptions(data_dir=Path(data_dir), port=port, host=host, households=households))
    try:
        return demo.run()
    except DemoError as exc:
        sys.stderr.write(f"ecommunity demo: {exc}\n")
        return EXIT_FAILURE
