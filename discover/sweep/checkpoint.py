"""Sweep checkpoints: the full ES state, PRNG key, generation and best-so-far, bit for bit.

A checkpoint is an `.npz` of the leaves of one pytree plus a JSON header; it is restored
into a template pytree of the same structure (built from the same config), which checks
that every leaf's shape and dtype match. Files are written atomically, so a crash or
`kill -9` leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import Any, Callable

import jax
import numpy as np

from discover.files.atomic import write_bytes_atomic
from inner_loop.errors import ConfigError

FORMAT_VERSION = 1


class UnreadableCheckpoint(ConfigError):
    """A checkpoint file that cannot be read (cut short, damaged): an older one may still be."""


def save_checkpoint(path: str, generation: int, tree: Any, header: dict | None = None) -> str:
    """Write `tree` (any pytree of arrays) to `path` as the checkpoint of `generation`."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    leaves = [np.asarray(x) for x in jax.tree.leaves(jax.device_get(tree))]
    meta = {"format_version": FORMAT_VERSION, "generation": generation, "num_leaves": len(leaves),
            **(header or {})}
    buffer = io.BytesIO()
    np.savez(buffer, __header__=np.asarray(json.dumps(meta)),
             **{f"leaf_{i:05d}": leaf for i, leaf in enumerate(leaves)})
    write_bytes_atomic(path, buffer.getvalue())
    return path


def load_newest_checkpoint(checkpoints: list[tuple[int, str]], template: Any,
                           log: Callable[[str], None]) -> tuple[Any, dict] | None:
    """(tree, header) of the newest readable checkpoint of [(generation, path)], saying in one
    line each unreadable one it passes over; None if there is none. A checkpoint that reads
    but does not fit `template` (another config) is an error, not skipped."""
    for generation, path in reversed(checkpoints):
        try:
            return load_checkpoint(path, template)
        except UnreadableCheckpoint as err:
            older = [g for g, _ in checkpoints if g < generation]
            log(f"{err}; resuming from " + (f"generation {older[-1]}'s checkpoint" if older else "the start"))
    return None


def load_checkpoint(path: str, template: Any) -> tuple[Any, dict]:
    """(tree shaped like `template`, header). ConfigError if it does not fit."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            header = json.loads(str(archive["__header__"]))
            leaves = [archive[f"leaf_{i:05d}"] for i in range(header["num_leaves"])]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as err:
        raise UnreadableCheckpoint(f"checkpoint {path!r} is corrupt ({type(err).__name__})") from None
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise ConfigError(f"checkpoint {path!r} has format version {header['format_version']}, "
                          f"newer than this discover reads ({FORMAT_VERSION})")
    expected, treedef = jax.tree.flatten(template)
    if len(leaves) != len(expected):
        raise ConfigError(f"checkpoint {path!r} does not match this sweep's config "
                          f"({len(leaves)} arrays, expected {len(expected)})")
    for i, (got, want) in enumerate(zip(leaves, expected)):
        want = np.asarray(want)
        if got.shape != want.shape or got.dtype != want.dtype:
            raise ConfigError(f"checkpoint {path!r} does not match this sweep's config (array {i}: "
                              f"{got.dtype}{list(got.shape)}, expected {want.dtype}{list(want.shape)})")
    return jax.tree.unflatten(treedef, [jax.numpy.asarray(x) for x in leaves]), header
