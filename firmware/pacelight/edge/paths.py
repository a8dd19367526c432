"""Default data directory shared by local device tools and the host aggregator.

``$PACELIGHT_DATA_DIR`` if set, else ``$XDG_DATA_HOME/pacelight`` (``~/.local/share/pacelight``).
"""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    env = os.environ.get("PACELIGHT_DATA_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg).expanduser() / "pacelight"
