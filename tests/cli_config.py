"""Writes the config file a CLI test runs `leadsync` with, pointed at the Graph emulator.

Tests of the commands (`check`, `backfill`, `pages`, ...) share it instead of each
holding its own copy of the same TOML.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def write_cli_config(
    tmp_path: Path,
    graph,  # noqa: ANN001 - a GraphEmulator
    *,
    pages: Sequence[str] = ("111",),
    token: str = "",
    extra: str = "",
) -> str:
    """`leadsync.toml` in `tmp_path`: the emulator's app, `token` (default: its token), the
    pages, a SQLite store beside it, then `extra` (e.g. `[[destinations]]` tables)."""
    page_tables = "".join(f'[[facebook.pages]]\nid = "{page}"\n' for page in pages)
    path = tmp_path / "leadsync.toml"
    path.write_text(
        f"""
[facebook]
app_id = "{graph.app_id}"
app_secret = "{graph.app_secret}"
verify_token = "v"
access_token = "{token or graph.access_token}"
graph_url = "{graph.url}"
{page_tables}[store]
url = "sqlite:///{tmp_path / "l.db"}"
{extra}"""
    )
    return str(path)
