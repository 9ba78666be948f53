"""Handing the simulator's control key to the local operator, and to nobody else.

A key made at start is written owner-only (mode 0600) to a file the operator can read, and
shown on the terminal only when there is one: a service's stdout is often its log (Docker,
systemd), where a key has no place. A key the operator gave (SOPBOT_SIM_KEY) is theirs already:
an older file's key, which no longer opens anything, is removed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from app.engine.private_file import write_private
from app.faces.sim.access import KEY_HEADER


def hand_over(key: str, given: bool, path: Path) -> str:
    """Write or clear the key file; the line to print (OSError if the file cannot be)."""
    if given:
        path.unlink(missing_ok=True)
        return f"its control paths need SOPBOT_SIM_KEY in the {KEY_HEADER} header"
    write_private(path, key + "\n")
    where = f"in {path}, readable by you only"
    shown = f"control key {key} ({where})" if sys.stdout.isatty() else f"control key {where}"
    return f"{shown}; send it in the {KEY_HEADER} header"
