"""`leadsync demo`, the README's main command, runs the whole flow and exits 0 (demo.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def test_demo_lands_every_lead_once_and_flips_an_engaged_lead_to_mql(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "leadsync", "demo", "--leads", "10"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "10 rows in the sheet, each once" in result.stdout
    assert "flipped to MQL in place" in result.stdout
    assert "Traceback" not in result.stderr
