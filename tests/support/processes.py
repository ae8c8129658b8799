"""This test process's children that run isolated calls (``finscale.data.isolated_call``).

Other children (the Prefect test harness's server, say) are not counted.
"""

from __future__ import annotations

import psutil

from finscale.data import isolated_call


def isolated_call_children() -> list[psutil.Process]:
    """Live child processes started by ``call_in_subprocess``."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if isolated_call.__name__ in child.cmdline():
                found.append(child)
        except psutil.NoSuchProcess:
            continue  # it ended while we looked
    return found
