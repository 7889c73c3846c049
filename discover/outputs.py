"""Writing result files so that a reader never sees a half-written one."""

from __future__ import annotations

import json
import os


def write_json_atomic(path: str, payload: dict) -> None:
    """Write `payload` as JSON to a temporary file beside `path`, then rename it into place."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
