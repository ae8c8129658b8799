"""Names of the atomic writer's temp files, and removal of those a killed writer left behind.

A temp file is named ``.<target>.pid<PID>.<HOST>.<random>.tmp``: the writing process's id
and a short hash of its host name. A leftover is removed only when it is ours by name, was
written on this host, and its process is gone. Why the process and not an age threshold:
a writer can legitimately take long (a multi-GB checkpoint on a slow disk, a writer
paused in a debugger, a hung vendor call between open and rename), and any fixed age
would sooner or later delete a file a live writer still renames; a dead PID proves no one
will. A PID that was reused by another process keeps its file until that process ends too
(a late removal, never a wrong one). A temp file written on another host (a workspace on a
shared disk) is left alone: this host cannot see that process; that host's next start
cleans it.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import socket
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"
HOST_TAG_CHARS = 8
_TEMP_RE = re.compile(r"^\..+\.pid(?P<pid>\d+)\.(?P<host>[0-9a-f]{8})\.[^.]+\.tmp$")


def host_tag() -> str:
    """A short, file-name-safe tag of this host (a hash: host names may hold any character)."""
    digest = hashlib.sha256(socket.gethostname().encode()).hexdigest()
    return digest[:HOST_TAG_CHARS]


def temp_prefix(target_name: str) -> str:
    """The ``mkstemp`` prefix of a temp file for ``target_name`` written by this process."""
    return f".{target_name}.pid{os.getpid()}.{host_tag()}."


def _process_alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno != errno.ESRCH
    return True


def is_stale_temp_file(path: Path) -> bool:
    """True for a temp file of our naming, from this host, whose writer process is gone."""
    match = _TEMP_RE.match(path.name)
    if match is None or match["host"] != host_tag():
        return False
    return not _process_alive(int(match["pid"]))


def remove_stale_temp_files(roots: Iterable[Path]) -> list[Path]:
    """Delete the stale temp files under ``roots`` (recursively); return what was removed."""
    removed: list[Path] = []
    for root in roots:
        if not root.is_dir():
            continue
        for path in root.rglob(f".*{TEMP_SUFFIX}"):
            if path.is_file() and not path.is_symlink() and is_stale_temp_file(path):
                path.unlink(missing_ok=True)
                removed.append(path)
    if removed:
        log.info("removed %d temp file(s) left by killed writers: %s", len(removed),
                 ", ".join(str(p) for p in removed[:5]))
    return removed
