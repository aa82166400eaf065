"""A pipeline job makes way for a webhook flood: it rests after each round while told to, and a
stop does not wait for the rest to end (leadsync/jobs.py)."""

from __future__ import annotations

import asyncio
import functools
import time

import pytest

from leadsync.jobs import REST_PER_ROUND, Job

ROUND_SECONDS = 0.05  # what each round of the step below takes
BACK_TO_BACK = ROUND_SECONDS * REST_PER_ROUND / 2  # a gap shorter than half a rest is none


def in_a_loop(test):  # noqa: ANN001, ANN201 - a test
    """Runs an async test in its own event loop (the project has no pytest-asyncio)."""

    @functools.wraps(test)
    def run(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        return asyncio.run(test(*args, **kwargs))

    return run


class TimedStep:
    """A step that always finds work and takes ROUND_SECONDS; records when each round ran."""

    def __init__(self) -> None:
        self.rounds: list[tuple[float, float]] = []
        self.ended = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def __call__(self) -> int:
        began = time.monotonic()
        time.sleep(ROUND_SECONDS)  # the round's own work, in the job's thread
        self.rounds.append((began, time.monotonic()))
        self._loop.call_soon_threadsafe(self.ended.set)
        return 1

    async def wait_rounds(self, count: int) -> None:
        while len(self.rounds) < count:
            self.ended.clear()
            await self.ended.wait()

    def gaps(self) -> list[float]:
        """Seconds between the end of each round and the start of the next."""
        return [nxt[0] - prev[1] for prev, nxt in zip(self.rounds, self.rounds[1:], strict=False)]


async def rounds(count: int, make_way: float = 0.0) -> tuple[Job, TimedStep]:
    """A fetch job told to make way for `make_way` seconds, stopped after `count` rounds."""
    step = TimedStep()
    job = Job("fetch", step)
    job.make_way(make_way)
    job.start()
    await step.wait_rounds(count)
    await job.stop(timeout=5)
    return job, step


@in_a_loop
async def test_rounds_run_back_to_back_while_there_is_work():
    job, step = await rounds(4)
    assert not job.making_way
    assert max(step.gaps()) < BACK_TO_BACK


@in_a_loop
async def test_while_making_way_each_round_is_followed_by_a_rest_nine_times_as_long():
    job, step = await rounds(3, make_way=60)
    assert job.making_way
    for (began, ended), gap in zip(step.rounds, step.gaps(), strict=False):
        assert gap >= (ended - began) * REST_PER_ROUND * 0.99


@in_a_loop
async def test_making_way_ends_when_its_time_has_passed():
    job, step = await rounds(4, make_way=ROUND_SECONDS / 2)  # over before the first round ends
    assert not job.making_way
    assert max(step.gaps()) < BACK_TO_BACK


@in_a_loop
async def test_a_stop_does_not_wait_for_a_rest_to_end():
    step = TimedStep()
    job = Job("fetch", step)
    job.make_way(seconds=60)
    job.start()
    await step.wait_rounds(1)  # now resting for about 9 rounds' time
    began = time.monotonic()
    await job.stop(timeout=5)
    assert time.monotonic() - began < ROUND_SECONDS * REST_PER_ROUND
    assert not job.alive
    assert len(step.rounds) == 1


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_make_way_for_no_time_changes_nothing(seconds):
    job = Job("fetch", lambda: 0)
    job.make_way(seconds)
    assert not job.making_way
