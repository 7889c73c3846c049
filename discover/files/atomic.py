"""Writing result files so that a reader never sees a half-written one."""

from __future__ import annotations

import contextlib
import json
import os
from importlib.metadata import PackageNotFoundError, version

from inner_loop.errors import ConfigError


def write_json_atomic(path: str, payload: dict) -> None:
    """Write `payload` as JSON to a temporary file beside `path`, then rename it into place."""
    write_text_atomic(path, json.dumps(payload, indent=2) + "\n")


def write_text_atomic(path: str, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it into place."""

    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)

    _write_atomic(path, write)


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, then rename it into place."""

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    _write_atomic(path, write)


def _temporary_path(path: str) -> str:
    """Where `path` is written before it is renamed into place (beside it, per process)."""
    return f"{path}.tmp{os.getpid()}"


def _write_atomic(path: str, write) -> None:
    """`write(tmp)`, then rename tmp to `path`. On any failure the temporary file is removed
    and `path` is left as it was; an OSError becomes a one-line ConfigError."""
    tmp = _temporary_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(err, OSError):
            raise ConfigError(f"cannot write {path!r}: {err.strerror or err}") from None
        raise


def check_output_file(path: str, what: str = "output path", *, reads: tuple[str, str] | None = None) -> None:
    """Before any work: ConfigError (one line) unless a file can be written at `path` (its
    folder is created if needed; the name is tried, so an over-long name or a read-only
    file system fails here, not after a long run). `reads`: (the file the command reads, what
    it is), which the output must not overwrite."""
    if reads and reads[0] and os.path.abspath(path) == os.path.abspath(reads[0]):
        raise ConfigError(f"{what} {path!r} is {reads[1]}; give another file name")
    ensure_writable_dir(os.path.dirname(os.path.abspath(path)))
    if os.path.isdir(path):
        raise ConfigError(f"{what} {path!r} is a folder; give a file name")
    probe = _temporary_path(path)  # the very name a write will use
    try:
        open(probe, "wb").close()
        os.remove(probe)
    except OSError as err:
        raise ConfigError(f"cannot write {what} {path!r}: {err.strerror or err}") from None


def package_versions() -> dict:
    """Installed versions of the packages whose behaviour a result depends on."""
    out = {}
    for pkg in ("jax", "jaxlib", "flax", "optax", "evosax", "gymnax", "wandb", "drift-discovery"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def ensure_writable_dir(path: str, what: str = "output folder") -> None:
    """Create folder `path` if needed; ConfigError (one line) if that fails or it is not writable."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create {what} {path!r}: {err.strerror}") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"{what} {path!r} is not writable")
