"""Loads and validates `leadsync.toml`, reporting every problem at once.

The file is TOML; `${ENV_VAR}` anywhere in a string is replaced by that
environment variable. Validation is typed (pydantic) and happens before the
daemon starts: each problem names its key path (`destinations[0].spreadsheet`)
and what to do, so the daemon refuses to start rather than fail mid-sync.
Each destination's own keys are validated by its connector's `Settings` model.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError

import connectors
from leadsync.constants import DEFAULT_DEAD_LETTER_AFTER
from leadsync.errors import ConfigError, Problem
from leadsync.routing import ContactsSettings, RoutingSettings
from leadsync.scoring.settings import ScoringSettings

DEFAULT_CONFIG_PATH = "leadsync.toml"
CONFIG_ENV_VAR = "LEADSYNC_CONFIG"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def parse_duration(value: Any) -> timedelta:
    """Reads "90s", "5m", "2h", "30d", "1w" (or a number of seconds) as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration; write it like 90s, 5m, 2h or 30d")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Id = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PageSettings(Section):
    id: Id
    forms: list[Id] | None = None  # None: every form of the page, new ones included


class FacebookSettings(Section):
    app_id: Id = ""
    app_secret: SecretStr
    verify_token: SecretStr
    access_token: SecretStr
    api_version: str = Field("v24.0", pattern=r"^v\d+\.\d+$")
    graph_url: str = "https://graph.facebook.com"
    poll_interval: Duration = timedelta(minutes=5)
    pages: list[PageSettings] = []


class ServerSettings(Section):
    host: str = "0.0.0.0"  # noqa: S104 - a daemon that receives webhooks listens on all interfaces
    port: int = Field(8080, ge=0, le=65535)
    events_token: SecretStr = SecretStr("")
    # Guards the status page and /metrics when set (server/admin.py); empty: open.
    admin_token: SecretStr = SecretStr("")
    # When set, the status page and /metrics listen here only, not on the public port.
    admin_host: str = "127.0.0.1"
    admin_port: int | None = Field(None, ge=0, le=65535)


class StoreSettings(Section):
    url: str = "sqlite:///leadsync.db"


class DeliverySettings(Section):
    dead_letter_after: Duration = DEFAULT_DEAD_LETTER_AFTER
    batch_size: int = Field(500, ge=1, le=5000)


class LoggingSettings(Section):
    format: Literal["auto", "console", "json"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class DestinationSettings(BaseModel):
    """A destination: routing keys here, the connector's own keys in `settings`."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    type: str
    forms: list[Id] = ["*"]
    only_mql: bool = False
    settings: Any = None

    def routes_form(self, form_id: str) -> bool:
        return "*" in self.forms or form_id in self.forms


class Settings(Section):
    facebook: FacebookSettings
    server: ServerSettings = ServerSettings()
    store: StoreSettings = StoreSettings()
    scoring: ScoringSettings = ScoringSettings()
    delivery: DeliverySettings = DeliverySettings()
    logging: LoggingSettings = LoggingSettings()
    contacts: ContactsSettings = ContactsSettings()
    routing: RoutingSettings = RoutingSettings()
    timezone: str = "UTC"
    destinations: list[DestinationSettings] = []

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The config file: the -c option, else $LEADSYNC_CONFIG, else ./leadsync.toml."""
    return Path(explicit or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)


def load_config(path: str | os.PathLike[str] | None = None) -> Settings:
    """Reads, interpolates and validates the config file; raises ConfigError with every problem."""
    file = config_path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        fix = "copy config.example.toml to leadsync.toml, or pass -c PATH"
        raise ConfigError([Problem(str(file), "config file not found", fix)]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            [Problem(str(file), f"not valid TOML: {exc}", "fix the syntax")]
        ) from None
    return parse_config(raw)


def parse_config(raw: dict[str, Any], environ: dict[str, str] | None = None) -> Settings:
    """Validates an already-read config mapping (used by tests and `demo`)."""
    problems: list[Problem] = []
    data = _interpolate(raw, os.environ if environ is None else environ, "", problems)
    destinations = data.pop("destinations", [])
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems.extend(problems_from(exc, prefix=""))
    parsed = _parse_destinations(destinations, problems, data)
    if settings is not None:
        known = {p.path for p in problems}
        whole = settings.model_copy(update={"destinations": parsed})
        problems.extend(p for p in _check_settings(whole) if p.path not in known)
    if problems:
        raise ConfigError(problems)
    assert settings is not None
    return settings.model_copy(update={"destinations": parsed})


def _interpolate(value: Any, environ: Any, path: str, problems: list[Problem]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, environ, _join(path, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, environ, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name = match[1]
        if name not in environ:
            fix = f"export {name}, or write the value in the file"
            problems.append(Problem(path, f"environment variable {name} is not set", fix))
            return ""
        return environ[name]

    return _ENV_REF.sub(replace, value)


def _parse_destinations(
    raw: Any, problems: list[Problem], config: dict[str, Any]
) -> list[DestinationSettings]:
    if not isinstance(raw, list):
        problems.append(Problem("destinations", "must be a list", "write [[destinations]] tables"))
        return []
    parsed: list[DestinationSettings] = []
    names: set[str] = set()
    for index, entry in enumerate(raw):
        path = f"destinations[{index}]"
        if not isinstance(entry, dict):
            problems.append(Problem(path, "must be a table", "write it as [[destinations]]"))
            continue
        common = {k: entry[k] for k in ("name", "type", "forms", "only_mql") if k in entry}
        own = {k: v for k, v in entry.items() if k not in common}
        try:
            destination = DestinationSettings.model_validate(common)
            module = connectors.load(destination.type, path=f"{path}.type")
            own_settings = module.Settings.model_validate(own)
            # A type whose keys depend on other sections (email's `to` on routing owners).
            if check := getattr(module, "check_with_config", None):
                problems.extend(check(own_settings, config, path))
        except ValidationError as exc:
            problems.extend(problems_from(exc, prefix=path))
            continue
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if destination.name in names:
            fix = "give each destination its own name"
            problems.append(Problem(f"{path}.name", f"{destination.name!r} is used twice", fix))
        names.add(destination.name)
        parsed.append(destination.model_copy(update={"settings": own_settings}))
    return parsed


def _check_settings(settings: Settings) -> list[Problem]:
    problems: list[Problem] = []
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            Problem(
                "timezone",
                f"unknown timezone {settings.timezone!r}",
                "use an IANA name such as Europe/Paris",
            )
        )
    if not settings.facebook.app_secret.get_secret_value():
        fix = "copy it from your app's Settings > Basic page in the Meta developer dashboard"
        problems.append(Problem("facebook.app_secret", "is empty", fix))
    from leadsync.sla_send import sla_problems  # imports connectors, which import this module

    return problems + sla_problems(settings)


_FIXES = {
    "missing": "add this key",
    "extra_forbidden": "remove it, or check its spelling against config.example.toml",
    "string_pattern_mismatch": "see config.example.toml for the expected form",
}


def problems_from(exc: ValidationError, prefix: str) -> list[Problem]:
    """Each pydantic error as a Problem named by its key path under `prefix`, with a fix."""
    problems = []
    for error in exc.errors():
        path = prefix
        for part in error["loc"]:
            path = f"{path}[{part}]" if isinstance(part, int) else _join(path, str(part))
        message = error["msg"].removeprefix("Value error, ")
        problems.append(Problem(path, message, _FIXES.get(error["type"], "")))
    return problems


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def secret_values(settings: BaseModel) -> list[str]:
    """Every secret the config holds, for the log redactor: each `SecretStr` anywhere in it
    (Facebook, server, every destination's own keys: SMTP password, CRM token, webhook
    secret, ...) and the store URL's password. A secret added to a connector is covered
    by declaring it `SecretStr`."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(settings)
    store = getattr(settings, "store", None)
    password = urlsplit(store.url).password if store is not None else None
    return [*found, *([password] if password else [])]
