"""Socket folders a SIGKILL left behind are removed at the next start, and nothing else is
(leadsync/socket_folder.py), on real folders, real Unix sockets and real processes."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadsync.socket_folder import make_socket_folder, remove_orphaned


@pytest.fixture
def parent() -> Iterator[Path]:
    """A short folder to work in: a Unix socket's path may not pass 107 bytes, and pytest's
    `tmp_path` under xdist comes close."""
    folder = Path(tempfile.mkdtemp())
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def socket_folder(parent: Path, pid: int, name: str = "x1") -> Path:
    """A folder as `leadsync run` leaves it when killed: two sockets nobody listens on."""
    folder = parent / f"leadsync-{pid}-{name}"
    folder.mkdir(mode=0o700)
    for sock_name in ("public.sock", "admin.sock"):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(folder / sock_name))  # the file stays after the socket closes
    return folder


def test_the_folder_of_a_process_that_is_gone_is_removed(parent):
    orphan = socket_folder(parent, dead_pid())
    assert remove_orphaned(parent) == [orphan]
    assert not orphan.exists()


def test_the_folder_of_a_running_process_is_kept(parent):
    running = socket_folder(parent, os.getpid())
    assert remove_orphaned(parent) == []
    assert sorted(p.name for p in running.iterdir()) == ["admin.sock", "public.sock"]


def test_a_folder_holding_anything_but_sockets_is_never_removed(parent):
    pid = dead_pid()
    with_a_file = socket_folder(parent, pid, "file")
    (with_a_file / "notes.txt").write_text("not ours to delete")
    a_plain_file = parent / f"leadsync-{pid}-plain"
    a_plain_file.write_text("a file, not a folder")
    a_link = parent / f"leadsync-{pid}-link"
    elsewhere = parent / "elsewhere"
    elsewhere.mkdir()
    a_link.symlink_to(socket_folder(elsewhere, pid, "target"))
    assert remove_orphaned(parent) == []
    assert (with_a_file / "notes.txt").exists() and a_plain_file.exists() and a_link.exists()


def test_names_not_of_the_form_prefix_pid_random_are_left_alone(parent):
    for name in ("leadsync-abc-x1", "leadsync-x1", "other-1-x1"):
        (parent / name).mkdir()
    assert remove_orphaned(parent) == []
    assert len(list(parent.iterdir())) == 3


def test_a_new_folder_is_private_named_after_this_process_and_clears_orphans_first(parent):
    orphan = socket_folder(parent, dead_pid())
    folder = make_socket_folder(parent)
    assert not orphan.exists()
    assert folder.name.startswith(f"leadsync-{os.getpid()}-")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert remove_orphaned(parent) == []  # its own process runs: kept
    assert folder.is_dir()
