"""Debian's headless chromium, driven by Playwright, for tests that look at a page as a person does.

Playwright never downloads a browser here: it launches the system chromium
(`apt-get install chromium`, as .ci/run does) by path. Without it a test is
skipped on a workstation and fails on CI (CI=true), so CI can never go green
by silently not running the browser tests. Screenshots go to
`test-artifacts/` at the repository root (gitignored), for people and CI to look at.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

# The system browser; LEADSYNC_CHROMIUM points elsewhere on machines that keep it elsewhere.
CHROMIUM_PATH = os.environ.get("LEADSYNC_CHROMIUM", "/usr/bin/chromium")

# Headless and quiet: no sandbox (CI runs as root in a container), no GPU, and no calls home
# (component updates, sync, QUIC probes), so a test only ever talks to our own server.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Wide enough for the status page's tables without wrapping ids.
VIEWPORT = {"width": 1280, "height": 900}


def require_chromium() -> str:
    """The chromium executable; skips the test without one, or fails it on CI."""
    found = shutil.which(CHROMIUM_PATH)
    if found:
        return found
    why = f"no chromium at {CHROMIUM_PATH}: apt-get install chromium (or set LEADSYNC_CHROMIUM)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{why}; CI must run the browser tests")
    pytest.skip(why)


@contextmanager
def chromium_page(executable: str | None = None) -> Iterator[Page]:
    """A fresh page in a freshly launched headless chromium, closed afterwards."""
    executable = executable or require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
            yield context.new_page()
            context.close()
        finally:
            browser.close()


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG file's IHDR chunk; fails when the file is not a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert head[12:16] == b"IHDR", f"{path} has no IHDR chunk first"
    width, height = struct.unpack(">II", head[16:24])
    return width, height
