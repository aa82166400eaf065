"""The docs stay true: the README's commands, every config key and every health reason.

Fails when a setting, a command or a /healthz reason is added without being documented,
or when the README's test command and CI's drift apart.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel
from typer.main import get_command

import connectors
from leadsync.cli import app
from leadsync.config import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
EXAMPLE = (ROOT / "config.example.toml").read_text()


def shell_lines(text: str) -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_readme_has_the_two_one_line_commands_and_ci_runs_the_test_one():
    lines = shell_lines(README)
    demo = [line for line in lines if line.endswith("leadsync demo")]
    tests = [line for line in lines if "pytest" in line]
    assert len(demo) == 1 and demo[0].startswith("python3.11 -m venv")
    assert len(tests) == 1 and tests[0].startswith("python3.11 -m venv")
    assert tests[0] in (ROOT / ".ci" / "run").read_text()


def test_every_command_is_in_the_readme():
    for name in get_command(app).commands:  # type: ignore[attr-defined]
        assert f"leadsync {name}" in README, name


def test_every_health_reason_is_explained_in_the_readme():
    source = (ROOT / "leadsync" / "health.py").read_text()
    reasons = set(re.findall(r'f?"([a-z_]+): ', source))
    assert reasons >= {"store_not_writable", "facebook_token_invalid", "polling_stalled"}
    for reason in reasons:
        assert f"`{reason}`" in README, reason


def keys_of(model: type[BaseModel]) -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(field.alias or name)  # `from` is written `from` (the field is `sender`)
        for arg in (field.annotation, *getattr(field.annotation, "__args__", ())):
            for inner in (arg, *getattr(arg, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    keys |= keys_of(inner)
    return keys


def documented(key: str) -> bool:
    k = re.escape(key)
    pattern = rf"^\s*#?\s*{k}\s*=|^\[\[?{k}[\].]|\.{k}[\].]"
    return re.search(pattern, EXAMPLE, re.M) is not None


@pytest.mark.parametrize(
    "model",
    [Settings, *(connectors.load(t).Settings for t in connectors.BUILTIN)],
    ids=["leadsync", *connectors.BUILTIN],
)
def test_every_config_key_is_documented_in_config_example(model):
    internal = {"settings"}  # DestinationSettings carries the connector's own keys there
    missing = sorted(k for k in keys_of(model) - internal if not documented(k))
    assert not missing, f"undocumented keys in config.example.toml: {missing}"


def test_config_example_carries_exactly_the_default_rules():
    """config.example.toml copies leadsync/scoring/defaults.toml; the two must not drift."""
    defaults = (ROOT / "leadsync" / "scoring" / "defaults.toml").read_text()
    assert tomllib.loads(EXAMPLE)["scoring"] == tomllib.loads(defaults)["scoring"]
