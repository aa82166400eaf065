"""What a re-read config means for the running daemon: applied now, or after a restart.

SIGHUP (or a failing token, at each poll) re-reads the config file. `plan`
compares it with the settings in use and keeps every change the daemon can
take without a restart: the Facebook token, pages, their forms filters and
the poll interval, the webhook's verify token, the events token, scoring
rules, groups and threshold (which re-score every lead), destinations added,
removed or changed, delivery settings, routing owners and rules and the
contacts region (for leads not yet assigned: an owner once given stays) and
the log level. Any other key that
changed (server host or port, store URL, app secret, Graph URL, log format,
...) keeps its old value until a restart, and the plan names it by key path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import BaseModel

from leadsync import logs
from leadsync.config import Settings, load_config, secret_values
from leadsync.errors import ConfigError
from leadsync.ingest.scope import PageScope
from leadsync.models import utcnow
from leadsync.routing import Router
from leadsync.scoring.engine import Scorer

if TYPE_CHECKING:
    from leadsync.daemon import Daemon

log = structlog.get_logger(__name__)

# Keys read afresh wherever they are used (the webhook and events routes read the settings of
# each request; the Graph client takes a new token). The rest are copied into long-lived
# objects at start (the listening socket, the store, the Graph client, the log format).
LIVE_KEYS = {
    "facebook": ("access_token", "pages", "poll_interval", "verify_token"),
    "server": ("events_token",),
    "logging": ("level",),
}
# Whole sections the daemon rebuilds from: scorer and routing, delivery workers.
REBUILT_SECTIONS = ("scoring", "delivery", "destinations", "routing", "contacts")


@dataclass(frozen=True)
class ReloadPlan:
    """The settings to run with now, and what changed."""

    settings: Settings
    token_changed: bool = False
    polling_changed: bool = False
    scoring_changed: bool = False
    log_level_changed: bool = False
    destinations_added: list[str] = field(default_factory=list)
    destinations_removed: list[str] = field(default_factory=list)
    destinations_changed: list[str] = field(default_factory=list)
    restart_needed: list[str] = field(default_factory=list)

    @property
    def applied(self) -> list[str]:
        """What is applied now, in the words of the config."""
        parts = {
            "facebook.access_token": self.token_changed,
            "facebook.pages/poll_interval": self.polling_changed,
            "scoring": self.scoring_changed,
            "logging.level": self.log_level_changed,
        }
        names = [name for name, changed in parts.items() if changed]
        names += [f"destinations: +{n}" for n in self.destinations_added]
        names += [f"destinations: -{n}" for n in self.destinations_removed]
        return names + [f"destinations: ~{n}" for n in self.destinations_changed]


def plan(current: Settings, fresh: Settings) -> ReloadPlan:
    """Sorts the changes from `current` to `fresh` into applied now and restart needed."""
    update: dict[str, Any] = {name: getattr(fresh, name) for name in REBUILT_SECTIONS}
    for section, keys in LIVE_KEYS.items():
        live = {key: getattr(getattr(fresh, section), key) for key in keys}
        update[section] = getattr(current, section).model_copy(update=live)
    settings = current.model_copy(update=update)
    old = {d.name: d for d in current.destinations}
    new = {d.name: d for d in fresh.destinations}
    rebuilt_all = current.delivery != fresh.delivery  # batch size, dead-letter age: every worker
    fb_old, fb_new = current.facebook, fresh.facebook
    polling_changed = (fb_old.pages, fb_old.poll_interval) != (fb_new.pages, fb_new.poll_interval)
    return ReloadPlan(
        settings=settings,
        token_changed=fb_old.access_token != fb_new.access_token,
        polling_changed=polling_changed,
        scoring_changed=current.scoring != fresh.scoring,
        log_level_changed=current.logging.level != fresh.logging.level,
        destinations_added=[n for n in new if n not in old],
        destinations_removed=[n for n in old if n not in new],
        destinations_changed=[n for n in new if n in old and (rebuilt_all or old[n] != new[n])],
        restart_needed=list(_differences(settings, fresh)),
    )


def _differences(kept: BaseModel, fresh: BaseModel, prefix: str = "") -> Iterator[str]:
    """Key paths where `fresh` differs from `kept`, down to the fields of nested sections."""
    for name in type(fresh).model_fields:
        before, after = getattr(kept, name), getattr(fresh, name)
        if before == after:
            continue
        path = f"{prefix}{name}"
        if isinstance(after, BaseModel) and type(before) is type(after):
            yield from _differences(before, after, f"{path}.")
        else:
            yield path


class Reloader:
    """Re-reads the daemon's config file and applies the plan to the running daemon."""

    def __init__(self, daemon: Daemon):
        self._daemon = daemon
        self.loop: asyncio.AbstractEventLoop | None = None  # the daemon's, once it started
        self._lock = asyncio.Lock()  # one reload at a time, in the order asked
        self._tasks: set[asyncio.Task[ReloadPlan | None]] = set()
        self._restart_needed: list[str] = []

    def request(self) -> None:
        """Reloads soon; safe from any thread (the signal handler, a poll's thread)."""
        if self._daemon.config_path is not None and self.loop is not None:
            self.loop.call_soon_threadsafe(self._spawn)

    def run_from_thread(self, timeout: float) -> None:
        """Reloads now and waits (up to `timeout`), from a worker thread, not the loop's."""
        if self._daemon.config_path is not None and self.loop is not None:
            asyncio.run_coroutine_threadsafe(self.run(), self.loop).result(timeout=timeout)

    def _spawn(self) -> None:
        task = asyncio.create_task(self.run())
        self._tasks.add(task)  # a task nobody holds may be collected before it ends
        task.add_done_callback(self._tasks.discard)

    async def run(self) -> ReloadPlan | None:
        """Re-reads the config; applies every change it safely can, logs what needs a restart."""
        async with self._lock:
            try:
                fresh = await asyncio.to_thread(load_config, self._daemon.config_path)
            except ConfigError as exc:
                log.error("config.reload_failed", problems=[str(p) for p in exc.problems])
                return None
            change = plan(self._daemon.settings, fresh)
            await self._apply(change)
            return change

    async def _apply(self, change: ReloadPlan) -> None:
        daemon, fresh = self._daemon, change.settings
        daemon.settings = daemon.context.settings = fresh  # the routes read it per request
        fb = fresh.facebook
        logs.REDACTOR.add_secrets(secret_values(fresh))  # new destinations bring new secrets
        if change.token_changed:
            daemon.graph.set_access_token(fb.access_token.get_secret_value())
            log.info("token.replaced")
            daemon.fetch_job.wake()
        if change.log_level_changed:
            logs.set_level(fresh.logging.level)
        scorer = Scorer(fresh.scoring) if change.scoring_changed else daemon.enqueuer.scorer
        router, region = Router(fresh.routing), fresh.contacts.default_region
        await asyncio.to_thread(
            daemon.enqueuer.reconfigure, scorer, fresh.destinations, router, region
        )
        gone = {*change.destinations_removed, *change.destinations_changed}
        made = {*change.destinations_added, *change.destinations_changed}
        if gone or made:
            await daemon.replace_destinations(gone, made)
        if change.polling_changed:  # pages and forms: what the fetcher takes, too
            daemon.fetcher.set_scope(PageScope.of(fb.pages))
            if daemon.started:
                daemon.schedule_polls()
        daemon.sla.configure(fresh)  # speed_to_lead, escalate_to, the destinations they use
        if daemon.started:
            daemon.sla.schedule(daemon.scheduler)
        if daemon.started and change.scoring_changed:  # the daily re-score, now
            daemon.scheduler.modify_job("decay", next_run_time=utcnow())
        self._log(change)

    def _log(self, change: ReloadPlan) -> None:
        if change.applied:
            log.info("config.reloaded", applied=change.applied)
        # Said once, not at each poll that re-reads the file while the token fails.
        if change.restart_needed and change.restart_needed != self._restart_needed:
            log.warning(
                "config.restart_needed", keys=change.restart_needed,
                fix="restart leadsync to apply these; they keep their old values until then",
            )  # fmt: skip
        self._restart_needed = change.restart_needed
