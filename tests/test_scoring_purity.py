"""leadsync/scoring is the pure engine: no module in it imports the config, the store, the CLI or
anything downstream, and none reads or writes files or the network (read from the source with
ast, so an import hidden inside a function counts too)."""

from __future__ import annotations

import ast
from pathlib import Path

import leadsync.scoring

SCORING = Path(leadsync.scoring.__file__).parent

# Data flows sources -> store -> scoring -> outbox -> connectors; the engine sits above none.
FORBIDDEN_PACKAGES = (
    "leadsync.store",
    "leadsync.config",
    "leadsync.cli",
    "leadsync.calibration",
    "leadsync.daemon",
    "leadsync.server",
    "leadsync.outbox",
    "leadsync.ingest",
    "leadsync.facebook",
    "leadsync.emulators",
    "connectors",
)
# Modules whose only use is file, process or network I/O.
IO_MODULES = (
    "os",
    "io",
    "pathlib",
    "shutil",
    "tempfile",
    "csv",
    "sqlite3",
    "psycopg",
    "psycopg_pool",
    "socket",
    "ssl",
    "http",
    "urllib",
    "requests",
    "httpx",
    "aiohttp",
    "subprocess",
    "gspread",
    "facebook_business",
    "rich",
)
IO_CALLS = frozenset({"open", "print", "input"})
IO_METHODS = frozenset({"read_text", "read_bytes", "write_text", "write_bytes", "open"})
# The one file the engine reads: its own default rules, packaged beside it (settings.py).
PACKAGED_DATA = {("settings.py", "read_text")}


def _within(name: str, roots: tuple[str, ...]) -> bool:
    return any(name == root or name.startswith(f"{root}.") for root in roots)


def offences(package: Path) -> list[str]:
    """Every forbidden import or I/O call in the package's modules, as `file:line: what`."""
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for what in _offence(node, path.name):
                found.append(f"{path.name}:{node.lineno}: {what}")
    return found


def _offence(node: ast.AST, module: str) -> list[str]:
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        names = [node.module]
    bad = [f"imports {n}" for n in names if _within(n, FORBIDDEN_PACKAGES + IO_MODULES)]
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name) and func.id in IO_CALLS:
            bad.append(f"calls {func.id}()")
        method = func.attr if isinstance(func, ast.Attribute) else ""
        if method in IO_METHODS and (module, method) not in PACKAGED_DATA:
            bad.append(f"calls .{method}()")
    return bad


def test_scoring_imports_nothing_downstream_and_does_no_io():
    assert offences(SCORING) == []


def test_the_check_sees_an_import_hidden_in_a_function(tmp_path):
    """A lazy import of the store or an open() inside a function is still caught."""
    (tmp_path / "sneaky.py").write_text(
        "def f(url):\n"
        "    from leadsync.store import open_store\n"
        "    import leadsync.config\n"
        "    with open(url) as file:\n"
        "        return file.read()\n",
        encoding="utf-8",
    )
    assert offences(tmp_path) == [
        "sneaky.py:2: imports leadsync.store",
        "sneaky.py:3: imports leadsync.config",
        "sneaky.py:4: calls open()",
    ]


def test_calibration_is_where_the_commands_live():
    """The `score` and `calibrate` commands moved out of the engine, not away."""
    from leadsync.calibration.cli import calibrate_command, score_command

    assert callable(score_command) and callable(calibrate_command)
