"""Group commit on a real journal file: webhooks that arrive together share one commit, and
the committer says how many did (what tells the worker to make way, leadsync/acceptor.py)."""

from __future__ import annotations

import asyncio

from leadsync.ingest.group_commit import GroupCommitter
from leadsync.ingest.journal import IngestJournal, waiting_notifications
from leadsync.models import Notification


def test_concurrent_webhooks_share_one_commit_and_a_lone_one_commits_alone(tmp_path):
    journal = IngestJournal(tmp_path / "leadsync.db")
    committed: list[int] = []
    committer = GroupCommitter(journal, on_committed=committed.append, inline=True)

    async def scenario() -> list[int]:
        await asyncio.gather(
            *(committer.commit([Notification(str(n), "111")]) for n in range(1, 11))
        )
        together = committer.last_group
        await committer.commit([Notification("11", "111")])
        return [together, committer.last_group]

    assert asyncio.run(scenario()) == [10, 1]
    assert committer.commits == 2
    assert committed == [10, 1]  # notifications added, per commit
    journal.close()
    ids = [note.lead_id for note in waiting_notifications(tmp_path / "leadsync.db")]
    assert sorted(ids, key=int) == [str(n) for n in range(1, 12)]
