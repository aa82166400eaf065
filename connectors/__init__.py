"""The registry of destinations.

A destination type is a module with a pydantic `Settings` model (its own config
keys, `extra="forbid"`) and a `build(name, settings) -> Connector` function.
Built-in types are listed here, one line each; third-party packages add theirs
through the entry-point group `leadsync.connectors` (name = type, value = module).
What `build` returns must keep the `leadsync.abc.Connector` protocol; third-party
connectors prove the rest of the contract with `leadsync.testing`.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from leadsync.abc import Connector
from leadsync.errors import ConfigError, Problem

BUILTIN: dict[str, str] = {
    "google_sheets": "connectors.google_sheets",
    "hubspot": "connectors.hubspot",
    "webhook": "connectors.webhook",
    "slack": "connectors.slack",
    "meta_conversions": "connectors.meta_conversions",
    "email": "connectors.email",
}

ENTRY_POINT_GROUP = "leadsync.connectors"


def available_types() -> dict[str, str]:
    """Every known destination type and the module that implements it."""
    types = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        types.setdefault(ep.name, ep.value)
    return types


def load(type_name: str, *, path: str = "destinations[].type") -> ModuleType:
    """The module implementing `type_name`; a ConfigError naming `path` when unknown."""
    types = available_types()
    if type_name not in types:
        known = ", ".join(sorted(types))
        raise ConfigError(
            [Problem(path, f"unknown destination type {type_name!r}", f"use one of: {known}")]
        )
    return importlib.import_module(types[type_name])


def build(
    type_name: str, name: str, settings: Any, *, path: str = "destinations[].type"
) -> Connector:
    """The connector of destination `name`; a ConfigError when it lacks a Connector member."""
    module = load(type_name, path=path)
    connector = module.build(name, settings)
    if not isinstance(connector, Connector):
        members = ("name", "ensure_ready", "check_ready", "deliver", "ready_in", "close")
        missing = ", ".join(m for m in members if not hasattr(connector, m))
        problem = f"type {type_name!r} ({module.__name__}) builds a connector without {missing}"
        fix = "derive it from leadsync.abc.ConnectorBase (it has check_ready, ready_in, close)"
        raise ConfigError([Problem(path, problem, fix)])
    return connector
