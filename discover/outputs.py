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


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, then rename it into place."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def package_versions() -> dict:
    """Installed versions of the packages whose behaviour a result depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("jax", "jaxlib", "flax", "optax", "evosax", "gymnax", "wandb", "drift-discovery"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def ensure_writable_dir(path: str, what: str = "output folder") -> None:
    """Create folder `path` if needed; ConfigError (one line) if that fails or it is not writable."""
    from inner_loop.errors import ConfigError

    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create {what} {path!r}: {err.strerror}") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"{what} {path!r} is not writable")
