"""``ecommunity gateway run``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from ecommunity.cli import EXIT_FAILURE, UsageError

logger = logging.getLogger(__name__)


def run_command(
    *,
    config_file: str | None,
    serial_port: str | None,
    profile: str | None,
    key: bytes | None,
    auth_key: bytes | None,
    data_dir: str | None,
    http_port: int | None,
    cloud_url: str | None,
    line: str | None,
    name: str | None = None,
    http_host: str | None = None,
    mdns: bool | None = None,
    mqtt_url: str | None = None,
    force_setup: bool = False,
) -> int:
    """Run the gateway until SIGTERM/Ctrl-C. Flags override the other settings sources.

    A key given as a flag is saved in the secrets file of the data directory (mode 0600), so
    that the service can later be started without it on its command line. Without a serial
    port or key the gateway starts in setup mode (the setup page of the local dashboard).
    """
    from ecommunity.gateway.service import GatewayService, ServiceError, meter_profile
    from ecommunity.gateway.settings import SecretsFile, SettingsError, load_settings

    try:
        settings = load_settings(
            config_file=None if config_file is None else Path(config_file),
            serial_port=serial_port,
            profile=profile,
            key=None if key is None else key.hex(),
            auth_key=None if auth_key is None else auth_key.hex(),
            data_dir=None if data_dir is None else Path(data_dir),
            http_port=http_port,
            cloud_url=cloud_url,
            line=line,
            name=name,
            http_host=http_host,
            mdns=mdns,
            mqtt_url=mqtt_url,
        )
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    try:
        meter_profile(settings)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if key is not None or auth_key is not None:
        secrets = SecretsFile(settings.secrets_path)
        try:
            secrets.update(
                key=None if key is None else key.hex(),
                **({} if auth_key is None else {"auth_key": auth_key.hex()}),
            )
        except SettingsError as exc:
            sys.stderr.write(f"cannot save the key: {exc}\n")
            return EXIT_FAILURE
    service = GatewayService(settings, out=sys.stdout, force_setup=force_setup)
    try:
        return service.run()
    except ServiceError as exc:
        sys.stderr.write(f"cannot start the gateway: {exc}\n")
        return EXIT_FAILURE
