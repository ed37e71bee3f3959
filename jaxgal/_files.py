"""Writing files so that a kill never leaves a half-written one."""

from __future__ import annotations

import os
from pathlib import Path


def write_text_atomically(path: Path, text: str):
    """Write `text` to a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
