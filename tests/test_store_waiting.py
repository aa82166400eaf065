"""Opening the daemon's store: a wrong URL fails at once, an unreachable one is waited for."""

from __future__ import annotations

import asyncio

import pytest

from leadsync.errors import ConfigError
from leadsync.store.waiting import PendingStore, StoreUnavailable, masked_url


def test_the_password_of_a_store_url_is_masked():
    url = "postgresql://leadsync:s3cr%40t@db:5432/leadsync?schema=a"
    assert masked_url(url) == "postgresql://leadsync:***@db:5432/leadsync?schema=a"
    assert masked_url("postgresql://leadsync@db/leadsync") == "postgresql://leadsync@db/leadsync"
    assert masked_url("sqlite:///leadsync.db") == "sqlite:///leadsync.db"


def test_a_wrong_store_url_is_a_config_error_not_a_wait(tmp_path):
    pending = PendingStore(f"sqlite:///{tmp_path}/missing-folder/leadsync.db")
    with pytest.raises(ConfigError, match="store.url"):
        asyncio.run(pending.try_open())


def test_a_pending_store_refuses_calls_until_it_opens(tmp_path):
    pending = PendingStore(f"sqlite:///{tmp_path / 'leadsync.db'}")
    with pytest.raises(StoreUnavailable, match="unavailable: opening"):
        pending.lead_ids()
    assert asyncio.run(pending.try_open())
    assert pending.lead_ids() == []
    pending.close()
