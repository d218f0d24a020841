"""Gateway settings: flags, ``ECOMMUNITY_GATEWAY_*`` variables, a TOML file, and the secrets file.

Sources, strongest first: the arguments given to :func:`load_settings` (the command line's
flags), the environment (``ECOMMUNITY_GATEWAY_KEY=...``, ``__`` separating nested groups), the
TOML file (``--config``, or ``ECOMMUNITY_GATEWAY_CONFIG_FILE``), the setup file and the secrets
file in the data directory, and the defaults.

The setup file (``setup.json`` in the data directory) holds what the setup page chose: serial
port, meter profile, line settings, the gateway's name and the cloud URL. A stronger source
(a flag, a variable, the TOML file) wins over it.

The secrets file (``secrets.json`` in the data directory, mode 0600) holds what must not sit in
a world-readable configuration: the meter keys and the device token the cloud issued when the
gateway was paired. The gateway writes it itself (:class:`SecretsFile`); secrets are
``SecretStr`` in memory, so that neither ``repr`` nor a log line shows them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import stat
import tempfile
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ecommunity.meter import LineSettings

logger = logging.getLogger(__name__)

ENV_PREFIX: Final = "ECOMMUNITY_GATEWAY_"
#: Names the TOML file when no ``config_file`` is passed to :func:`load_settings`.
CONFIG_FILE_ENV: Final = ENV_PREFIX + "CONFIG_FILE"
SECRETS_FILE_NAME: Final = "secrets.json"
DATABASE_FILE_NAME: Final = "readings.sqlite3"
STATUS_FILE_NAME: Final = "status.json"
SETUP_FILE_NAME: Final = "setup.json"
HARDWARE_ID_FILE_NAME: Final = "hardware-id"
#: The settings the secrets file may provide (the rest of it is pairing state).
_SECRET_SETTINGS: Final = ("key", "auth_key")
#: The settings the setup page may choose (kept in the setup file).
SETUP_SETTINGS: Final = ("serial_port", "profile", "line", "name", "cloud_url")
_LINE: Final = re.compile(r"(\d+)[- ,]?([5-8])([NEO])([12])")
_PARITIES: Final[dict[str, Literal["N", "E", "O"]]] = {"N": "N", "E": "E", "O": "O"}

_config_file: ContextVar[Path | None] = ContextVar("gateway_config_file", default=None)


class SettingsError(Exception):
    """The settings are invalid, or a settings or secrets file cannot be read."""


def parse_hex_key(text: str) -> bytes:
    """A 16-byte AES key from 32 hex digits (spaces and colons allowed).

    Raises:
        ValueError: not 32 hex digits.
    """
    cleaned = text.replace(" ", "").replace(":", "")
    try:
        key = bytes.fromhex(cleaned)
    except ValueError:
        raise ValueError("a key is 32 hex digits (16 bytes)") from None
    if len(key) != 16:
        raise ValueError(f"a key is 16 bytes (32 hex digits), got {len(key)} bytes")
    return key


def parse_line(text: str) -> LineSettings:
    """``BAUD-8N1`` (also ``BAUD 8E1``) as line settings.

    Raises:
        ValueError: not in that form.
    """
    match = _LINE.fullmatch(text.strip().upper())
    if match is None:
        raise ValueError("line settings look like 9600-8E1 (baud-bits parity stop)")
    parity = _PARITIES[match[3]]
    return LineSettings(int(match[1]), int(match[2]), parity, int(match[4]))


class GatewaySettings(BaseSettings):
    """Everything ``ecommunity gateway run`` needs. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid"
    )

    #: The meter's serial device, e.g. ``/dev/ttyUSB0``.
    serial_port: str | None = None
    #: Meter profile (``ecommunity meter profiles``).
    profile: str = "amis"
    #: Line settings instead of the profile's, e.g. ``9600-8N1`` (some adapters need it).
    line: str | None = None
    #: Decryption key from the grid operator, 32 hex digits.
    key: SecretStr | None = None
    #: DLMS authentication key, 32 hex digits (checks the GCM tag).
    auth_key: SecretStr | None = None
    #: Where the readings database, the secrets file and the status file live.
    data_dir: Path = Path("ecommunity-gateway")
    #: The cloud to pair with and upload to, e.g. ``https://cloud.example.org``. None: the
    #: gateway runs local-only.
    cloud_url: str | None = None
    #: The gateway's name, shown on the dashboard and announced over mDNS.
    name: str = Field(default="eCommunity gateway", min_length=1, max_length=40)
    #: Address and port of the local API and dashboard. The default listens on every
    #: interface, so that phones on the home network reach it.
    http_host: str = "0.0.0.0"
    #: 0 picks a free port (tests); ``status.json`` says which.
    http_port: int = Field(default=8080, ge=0, le=65535)
    #: Announce the gateway over mDNS (``_ecommunity._tcp.local.``).
    mdns: bool = True
    #: Addresses of the interfaces to announce on; None: all.
    mdns_interfaces: list[str] | None = None
    #: MQTT broker for Home Assistant, e.g. ``mqtt://user:password@homeassistant.local``.
    #: None: no MQTT.
    mqtt_url: SecretStr | None = None
    mqtt_base_topic: str = Field(default="ecommunity", min_length=1)
    mqtt_discovery_prefix: str = Field(default="homeassistant", min_length=1)
    #: At most one state message per meter this often (the newest reading wins); 0: every
    #: push. The local store and the cloud get every reading regardless. [s]
    mqtt_interval_s: float = Field(default=10.0, ge=0, le=3600)
    #: The id the gateway pairs with; by default a random id kept in the data directory.
    hardware_id: str | None = Field(default=None, min_length=1, max_length=128)
    #: How long the setup page waits for a meter frame when it checks a key. [s]
    meter_check_timeout_s: float = Field(default=30.0, gt=0, le=600)
    #: Uplink reconnect delays: the first, doubled per failure up to the maximum. [s]
    uplink_retry_initial_s: float = Field(default=1.0, gt=0, le=3600)
    uplink_retry_max_s: float = Field(default=60.0, gt=0, le=24 * 3600)

    @field_validator("key", "auth_key", mode="after")
    @classmethod
    def _valid_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        return SecretStr(parse_hex_key(value.get_secret_value()).hex())

    @field_validator("line", "cloud_url", "serial_port", "mqtt_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("name", mode="after")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value or any(not char.isprintable() for char in value):
            raise ValueError("a name is 1 to 40 printable characters")
        return value

    @field_validator("line", mode="after")
    @classmethod
    def _valid_line(cls, value: str | None) -> str | None:
        if value is not None:
            parse_line(value)
        return value

    @field_validator("cloud_url", mode="after")
    @classmethod
    def _valid_cloud_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError("the cloud URL looks like https://cloud.example.org")
        return value

    @property
    def key_bytes(self) -> bytes | None:
        return None if self.key is None else bytes.fromhex(self.key.get_secret_value())

    @property
    def auth_key_bytes(self) -> bytes | None:
        return None if self.auth_key is None else bytes.fromhex(self.auth_key.get_secret_value())

    @property
    def line_settings(self) -> LineSettings | None:
        return None if self.line is None else parse_line(self.line)

    @property
    def database_path(self) -> Path:
        return self.data_dir / DATABASE_FILE_NAME

    @property
    def secrets_path(self) -> Path:
        return self.data_dir / SECRETS_FILE_NAME

    @property
    def status_path(self) -> Path:
        return self.data_dir / STATUS_FILE_NAME

    @property
    def setup_path(self) -> Path:
        return self.data_dir / SETUP_FILE_NAME

    @property
    def configured(self) -> bool:
        """Whether the meter is set up: a serial port and (every profile is encrypted) a key."""
        return self.serial_port is not None and self.key is not None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file.get()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        sources.append(_DataDirFileSource(settings_cls, SETUP_FILE_NAME, SETUP_SETTINGS))
        sources.append(_DataDirFileSource(settings_cls, SECRETS_FILE_NAME, _SECRET_SETTINGS))
        return tuple(sources)


class _DataDirFileSource(PydanticBaseSettingsSource):
    """Some settings from a JSON file in the data directory the stronger sources chose."""

    def __init__(
        self, settings_cls: type[BaseSettings], file_name: str, names: tuple[str, ...]
    ) -> None:
        super().__init__(settings_cls)
        self.file_name = file_name
        self.names = names

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Not used: __call__ reads the whole file at once.
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        data_dir = self.current_state.get("data_dir")
        if data_dir is None:
            default = self.settings_cls.model_fields["data_dir"].default
            data_dir = default
        stored = SecretsFile(Path(data_dir) / self.file_name).load()
        return {name: stored.get(name) for name in self.names if stored.get(name)}


def load_settings(*, config_file: Path | None = None, **overrides: Any) -> GatewaySettings:
    """The settings from all sources; ``overrides`` (flags) win, None values are ignored.

    Raises:
        SettingsError: a value is invalid, or the TOML or secrets file cannot be read.
    """
    if config_file is None and os.environ.get(CONFIG_FILE_ENV):
        config_file = Path(os.environ[CONFIG_FILE_ENV])
    if config_file is not None and not config_file.is_file():
        raise SettingsError(f"the settings file {config_file} does not exist")
    given = {name: value for name, value in overrides.items() if value is not None}
    token = _config_file.set(config_file)
    try:
        return GatewaySettings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise SettingsError(f"invalid gateway settings: {problems}") from None
    except (OSError, ValueError) as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise SettingsError(f"cannot read the gateway settings: {exc}") from None
    finally:
        _config_file.reset(token)


@dataclass(frozen=True)
class DeviceCredentials:
    """What pairing gave: the device token for one cloud. The token is never logged."""

    cloud_url: str
    device_id: int
    token: SecretStr = field(repr=False)

    @property
    def target(self) -> str:
        """Names this pairing in the upload watermark: a new pairing uploads from the start."""
        return f"{self.cloud_url}#device={self.device_id}"


class SecretsFile:
    """A JSON object in a file only its owner may read (mode 0600), replaced atomically.

    Keys: ``key``, ``auth_key`` (hex), ``device_token``, ``device_id``, ``cloud_url``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any]:
        """The stored values; empty if there is no file.

        Raises:
            SettingsError: the file cannot be read or is not a JSON object.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SettingsError(f"cannot read {self.path}: {exc.strerror}") from None
        self._tighten_mode()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{self.path} is not JSON: {exc.msg} (line {exc.lineno})") from None
        if not isinstance(data, dict):
            raise SettingsError(f"{self.path} must hold a JSON object")
        return data

    def update(self, **values: Any) -> None:
        """Set (or, with None, remove) values and write the file atomically with mode 0600.

        Raises:
            SettingsError: the file cannot be read or written.
        """
        data = self.load()
        for name, value in values.items():
            if value is None:
                data.pop(name, None)
            else:
                data[name] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # mkstemp creates the file with mode 0600: the secret is never readable by others,
            # not even between writing and renaming.
            fd, temporary = tempfile.mkstemp(prefix=".secrets-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump(data, out, indent=2, sort_keys=True)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as exc:
            raise SettingsError(f"cannot write {self.path}: {exc}") from None

    def credentials(self, cloud_url: str) -> DeviceCredentials | None:
        """The device token stored for ``cloud_url``, if the gateway was paired with it."""
        data = self.load()
        token, device_id = data.get("device_token"), data.get("device_id")
        if data.get("cloud_url") != cloud_url or not isinstance(token, str) or not token:
            return None
        if not isinstance(device_id, int):
            return None
        return DeviceCredentials(cloud_url, device_id, SecretStr(token))

    def save_credentials(self, credentials: DeviceCredentials) -> None:
        self.update(
            cloud_url=credentials.cloud_url,
            device_id=credentials.device_id,
            device_token=credentials.token.get_secret_value(),
        )

    def forget_credentials(self) -> None:
        self.update(cloud_url=None, device_id=None, device_token=None)

    def _tighten_mode(self) -> None:
        with contextlib.suppress(OSError):
            mode = stat.S_IMODE(self.path.stat().st_mode)
            if mode & 0o077:
                logger.warning(
                    "%s was readable by others (mode %o): setting it to 0600", self.path, mode
                )
                self.path.chmod(0o600)


def hardware_id(settings: GatewaySettings) -> str:
    """The gateway's stable id for pairing: the setting, or a random id kept in the data dir.

    Raises:
        OSError: the id file cannot be read or written.
    """
    if settings.hardware_id:
        return settings.hardware_id
    path = settings.data_dir / HARDWARE_ID_FILE_NAME
    with contextlib.suppress(FileNotFoundError):
        stored = path.read_text(encoding="ascii").strip()
        if stored:
            return stored
    new = f"gw-{uuid.uuid4().hex}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new + "\n", encoding="ascii")
    return new


def redacted(settings: GatewaySettings) -> Iterator[tuple[str, str]]:
    """``(name, value)`` of every setting, with secrets shown as ``**********``."""
    for name in GatewaySettings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            yield name, "**********"
        else:
            yield name, "" if value is None else str(value)
