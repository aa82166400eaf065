"""The private folder where `leadsync run`'s worker listens, and the ones a SIGKILL left behind.

The HTTP process makes the folder (0700, in the system's temporary folder) and
passes its path to the worker, which serves its routes there on Unix sockets.
A stop removes it, and so does an orphaned worker whose HTTP process died. Only
a SIGKILL of both at once (`docker kill`, the OOM killer, a service manager's
last resort) leaves it behind, two dead sockets in a folder, one more each
time. So the folder is named after the HTTP process (`leadsync-<pid>-<random>`),
and each start removes those of our processes that are gone: folders we own
that hold nothing but sockets, named after a process that no longer runs.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

PREFIX = "leadsync-"


def make_socket_folder(parent: Path | None = None) -> Path:
    """A new folder only this user can enter, named after this process, once the folders of
    processes that died without removing theirs are gone."""
    parent = parent or Path(tempfile.gettempdir())
    remove_orphaned(parent)
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent))


def remove_orphaned(parent: Path) -> list[Path]:
    """Removes the socket folders in `parent` whose process is gone; returns them."""
    removed = []
    for folder in parent.glob(f"{PREFIX}*-*"):
        pid = folder.name.removeprefix(PREFIX).partition("-")[0]
        if pid.isdigit() and not _running(int(pid)) and _only_our_sockets(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        log.info("http.orphaned_sockets_removed", folders=[str(f) for f in removed])
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: asks whether the process exists, sends nothing
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: running
        return True
    return True


def _only_our_sockets(folder: Path) -> bool:
    """A folder of ours holding sockets and nothing else: never someone's files."""
    try:
        if not _ours(folder, stat.S_ISDIR):
            return False
        return all(_ours(entry, stat.S_ISSOCK) for entry in folder.iterdir())
    except OSError:  # gone meanwhile, or not ours to read
        return False


def _ours(path: Path, is_kind) -> bool:  # noqa: ANN001 - a stat.S_IS* test
    info = path.lstat()  # lstat: a symlink is not followed, and not ours to remove
    return is_kind(info.st_mode) and info.st_uid == os.getuid()
