"""Fixtures for the emulators: a fresh Graph and Sheets emulator per test, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from leadsync.emulators.graph import GraphEmulator
from leadsync.emulators.sheets import SheetsEmulator


@pytest.fixture
def graph() -> Iterator[GraphEmulator]:
    with GraphEmulator() as emu:
        yield emu


@pytest.fixture
def sheets() -> Iterator[SheetsEmulator]:
    with SheetsEmulator() as emu:
        yield emu
