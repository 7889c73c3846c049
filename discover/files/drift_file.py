"""The drift file: one self-describing, versioned file per drift, and loading it back.

A drift file is a NumPy `.npz` archive (a zip of plain arrays; read with
`allow_pickle=False`, so loading never runs code) holding

  * `__metadata__`: a JSON string -- format name and version, the parameterisation (`lpo`,
    `ta_lpo` or a zoo drift) with its options, the architecture and input features, the
    shape of every parameter array, provenance (sweep config, generation, fitness,
    training envs, package versions) and the axiom check made when it was written;
  * one array per drift parameter, named by its path in the params pytree
    (`params/Dense_0/kernel`).

`read_drift_file(path)` checks the format version, the parameterisation, every array's shape
and the mirror-learning axioms (docs/design.md, section 1) before returning a pure-JAX callable
`drift(ratio, advantage, progress=0.0)` (the grid and random points of
`discover.theorem.axioms.check_axioms`). Every problem is one `ConfigError` line naming
the file.
"""

from __future__ import annotations

import io
import json
import os
import reprlib
import zipfile
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from discover.files.atomic import package_versions, write_bytes_atomic
from discover.theorem.axioms import check_axioms
from discover.theorem.config import VerifyConfig
from inner_loop import drifts
from inner_loop.errors import ConfigError

FORMAT_NAME = "mirror-learning-drift"
# Version 2: `lpo`/`ta_lpo` are the relu(start + h) family; version 1 files hold the
# `start + g^2` family and load as `lpo_v1`/`ta_lpo_v1`.
FORMAT_VERSION = 2
METADATA_KEY = "__metadata__"

@dataclass(frozen=True, eq=False)  # hashed by identity, so jax.jit(loaded) works
class LoadedDrift:
    """A drift with its parameters bound, what `discover.load_drift` returns.

    Call it as `drift(ratio, advantage, progress=0.0) -> per-sample drift`:
      * `ratio`: pi(a|s) / pi_old(a|s) of samples drawn from pi_old, > 0;
      * `advantage`: their advantages (normalised per minibatch, as PPO does);
      * `progress`: the fraction of training done, in [0, 1] (read by `ta_lpo` drifts and by
        closed forms with `p`; the others ignore it);
    arrays of any broadcastable shapes, or Python numbers. The three are broadcast together
    and cast to at least float32; the result has their broadcast shape and that dtype. The
    policy loss is `-mean(ratio * advantage - drift(ratio, advantage, progress))`; with
    `load_drift("ppo")` that is PPO's clipped loss. Pure JAX: call it inside functions under
    `jit`, `grad` and `vmap` (close over it, or `jax.jit(drift)`; it is not a pytree, so it
    is not itself a jitted function's argument).

    Values: >= 0, 0 with zero slope at ratio = 1 (the mirror-learning axioms), finite for
    |log ratio| <= LOG_RATIO_CLIP (20) and |advantage| <= ADVANTAGE_MAX (1e6), the domain the
    axioms are checked on. Outside it, a drift that takes log r gives inf or NaN (ratio 0 or
    inf), so clip the log-ratio as the project's trainer does:
    `ratio = exp(clip(logp - logp_old, -LOG_RATIO_CLIP, LOG_RATIO_CLIP))`.

    Fields: `drift` (the parameterisation with its options: `drift.name`, `drift.options()`),
    `params` (its parameter pytree; `{}` for closed forms) and `metadata` (a drift file's
    metadata: provenance, training envs, axiom check; for a zoo drift its name and options).
    """

    drift: drifts.Drift
    params: Any
    metadata: dict

    def __call__(self, ratio: ArrayLike, advantage: ArrayLike, progress: ArrayLike = 0.0) -> jax.Array:
        dtype = jnp.result_type(ratio, advantage, progress, jnp.float32)  # at least float32
        ratio, advantage, progress = jnp.broadcast_arrays(*(jnp.asarray(x, dtype) for x in (ratio, advantage, progress)))
        return self.drift(self.params, ratio, advantage, progress)

    @property
    def name(self) -> str:
        """The parameterisation's name (`ppo`, `dpo`, `lpo`, `closed_form`, ...)."""
        return self.drift.name


def flatten_params(params: Any) -> dict[str, np.ndarray]:
    """`{"params/Dense_0/kernel": array, ...}` for a nested-dict params pytree."""
    flat = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = "/".join(str(getattr(p, "key", getattr(p, "idx", p))) for p in path)
        flat[name] = np.asarray(leaf)
    return flat


def unflatten_like(template: Any, flat: dict[str, np.ndarray]) -> Any:
    names = list(flatten_params(template))
    treedef = jax.tree_util.tree_structure(template)
    return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(flat[n]) for n in names])


def save_drift(path: str, drift: drifts.Drift, params: Any, provenance: dict | None = None,
               axiom_check: dict | None = None) -> dict:
    """Write `drift` with `params` to `path` atomically; returns the metadata written.

    The axioms are checked now (unless `axiom_check` is given) and the result recorded.
    """
    flat = flatten_params(params)
    if axiom_check is None:
        axiom_check = axiom_report(LoadedDrift(drift, params, {}))
    metadata = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
        "parameterisation": drift.name, "options": drift.options(),
        "architecture": drift.architecture(), "features": drift.feature_names(),
        **({"formula": drift.formula(params)} if isinstance(drift, drifts.AtomsDrift) else {}),
        "param_shapes": {k: list(v.shape) for k, v in flat.items()},
        "provenance": {"versions": package_versions(), **(provenance or {})},
        "axiom_check": axiom_check,
    }
    buffer = io.BytesIO()
    np.savez(buffer, **{METADATA_KEY: np.asarray(json.dumps(metadata))}, **flat)
    write_bytes_atomic(path, buffer.getvalue())
    return metadata


PACKAGED_SUFFIX = ".drift.npz"


def packaged_drifts() -> list[str]:
    """Names of the discovered drifts that ship with the package (`discover/data/drifts/`)."""
    folder = resources.files("discover.data").joinpath("drifts")
    return sorted(f.name.removesuffix(PACKAGED_SUFFIX) for f in folder.iterdir()
                  if f.name.endswith(PACKAGED_SUFFIX)) if folder.is_dir() else []


def drift_file_path(spec: str) -> str | None:
    """The drift file `spec` names: a packaged drift's name (e.g. `transfer-v1`, unless a
    file of that name exists here), or a path (an existing file, a name ending in .npz or
    one with a folder); None for anything else (a zoo name). The one rule every command uses."""
    if spec in packaged_drifts() and not os.path.isfile(spec):
        return str(resources.files("discover.data").joinpath("drifts", spec + PACKAGED_SUFFIX))
    if os.path.isfile(spec) or spec.endswith(".npz") or os.sep in spec:
        return spec
    return None


def read_drift_file(path: str, check_axioms: bool = True) -> LoadedDrift:
    """The drift stored in `path` (or the packaged drift of that name), checked; ConfigError
    (one line, naming the file) if not usable."""
    path = drift_file_path(path) or path
    metadata, arrays = _open(path)
    name = metadata.get("parameterisation")
    if metadata["format_version"] == 1:
        name = drifts.V1_NAMES.get(name, name)
    if name not in drifts.names():
        raise ConfigError(f"drift file {path!r}: unknown parameterisation {name!r}; "
                          f"this version reads {', '.join(drifts.names())}")
    options = metadata.get("options", {})
    try:
        drift = drifts.get(name, **options)
    except ConfigError as err:
        raise ConfigError(f"drift file {path!r}: {err}") from None
    except TypeError:  # an option value of a type the drift's own checks do not name (init_scale null)
        raise ConfigError(f"drift file {path!r}: options {options!r} have a value of the wrong "
                          f"type for a {name} drift") from None
    if isinstance(drift, drifts.AtomsDrift):
        _check_atoms(path, metadata.get("features", []), drift.feature_names())
    template = flatten_params(drift.init(jax.random.PRNGKey(0)))
    if set(arrays) != set(template):
        missing, extra = sorted(set(template) - set(arrays)), sorted(set(arrays) - set(template))
        raise ConfigError(f"drift file {path!r}: parameter arrays do not match a {name} drift with these "
                          f"options (missing {missing or 'none'}, unexpected {extra or 'none'})")
    for key, expected in template.items():
        got = arrays[key]
        if got.shape != expected.shape:
            raise ConfigError(f"drift file {path!r}: array {key!r} has shape {list(got.shape)}, "
                              f"expected {list(expected.shape)}")
        if not np.issubdtype(got.dtype, np.floating) or not np.all(np.isfinite(got)):
            raise ConfigError(f"drift file {path!r}: array {key!r} is not finite floating point")
    loaded = LoadedDrift(drift, unflatten_like(drift.init(jax.random.PRNGKey(0)), arrays), metadata)
    if check_axioms:
        report = axiom_report(loaded)
        if not report["passed"]:
            raise ConfigError(f"drift file {path!r} violates the mirror-learning axioms: {report['problem']}")
    return loaded


def _check_atoms(path: str, listed: list[str], expected: list[str]) -> None:
    """ConfigError (one line) unless the file's atoms are this version's, in its order: the
    weights mean nothing against other atoms."""
    if len(listed) != len(expected):
        raise ConfigError(f"drift file {path!r} lists {len(listed)} atoms; an atoms drift with its options "
                          f"has {len(expected)}")
    for i, (got, want) in enumerate(zip(listed, expected)):
        if got != want:
            raise ConfigError(f"drift file {path!r}: atom {i} is {reprlib.repr(got)}; this version's atom {i} "
                              f"is {want!r}")


def _open(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    if os.path.exists(path) and not os.path.isfile(path):  # a device or pipe could be read forever
        kind = "a folder" if os.path.isdir(path) else "not a regular file"
        raise ConfigError(f"drift file {path!r} is {kind}, not a drift file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError(f"drift file {path!r} does not exist") from None
    except (OSError, ValueError) as err:  # permissions, a name too long, a symlink loop, a NUL byte
        raise ConfigError(f"drift file {path!r} cannot be read: {getattr(err, 'strerror', None) or err}") from None
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
        if isinstance(archive, np.lib.npyio.NpzFile):
            with archive:
                arrays = {k: archive[k] for k in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as err:
        raise ConfigError(f"drift file {path!r} is corrupt or not a drift file ({type(err).__name__})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # np.save output (a .npy renamed): one bare array
        raise ConfigError(f"drift file {path!r} is a single .npy array, not a drift file (.npz archive)")
    if METADATA_KEY not in arrays:
        raise ConfigError(f"drift file {path!r} has no metadata; it is not a drift file")
    try:
        metadata = json.loads(str(arrays.pop(METADATA_KEY)))
    except json.JSONDecodeError:
        raise ConfigError(f"drift file {path!r} has corrupt metadata") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise ConfigError(f"drift file {path!r} is not a {FORMAT_NAME} file")
    version = metadata.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ConfigError(f"drift file {path!r} has an invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ConfigError(f"drift file {path!r} has format version {version}, newer than this discover reads "
                          f"(up to {FORMAT_VERSION}); upgrade drift-discovery")
    _check_metadata_types(path, metadata)
    return metadata, arrays


# JSON types of the metadata fields that readers use (read_drift_file, inspect, export, compare).
# A field may be absent (readers fall back to a default), but one that is present with
# another type would crash a reader or be shown wrongly (a string of envs printed letter by
# letter), so it is refused here.
_OBJECT, _ARRAY, _STRING, _NUMBER, _INTEGER, _BOOLEAN = "an object", "an array", "a string", "a number", \
    "an integer", "a boolean"
_STRINGS = "an array of strings"
METADATA_TYPES = {"parameterisation": _STRING, "options": _OBJECT, "architecture": _OBJECT, "features": _STRINGS,
                  "formula": _STRING, "param_shapes": _OBJECT, "provenance": _OBJECT, "axiom_check": _OBJECT}
PROVENANCE_TYPES = {"training_envs": _STRINGS, "versions": _OBJECT, "generation": _INTEGER, "fitness": _NUMBER}
AXIOM_CHECK_TYPES = {"passed": _BOOLEAN}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return _BOOLEAN
    if isinstance(value, int):
        return _INTEGER
    return {dict: _OBJECT, list: _ARRAY, str: _STRING, float: _NUMBER}.get(type(value), type(value).__name__)


def _has_type(value: Any, expected: str) -> bool:
    if expected == _NUMBER:
        return _json_type(value) in (_NUMBER, _INTEGER)
    if expected == _STRINGS:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    return _json_type(value) == expected


def _check_metadata_types(path: str, metadata: dict) -> None:
    """ConfigError (one line: file, field, value, allowed type) for a field of the wrong JSON type."""
    for table, parent in ((METADATA_TYPES, None), (PROVENANCE_TYPES, "provenance"),
                          (AXIOM_CHECK_TYPES, "axiom_check")):
        fields = metadata if parent is None else metadata.get(parent, {})  # parent checked on the pass before
        for key, expected in table.items():
            value = fields.get(key)
            if key in fields and not _has_type(value, expected):
                shown = "null" if value is None else f"{_json_type(value)} {reprlib.repr(value)}"
                field = key if parent is None else f"{parent}.{key}"
                raise ConfigError(f"drift file {path!r}: metadata field {field!r} is {shown}; it must be {expected}")


def axiom_report(drift_fn) -> dict:
    """The per-sample axioms (`discover.theorem.axioms.check_axioms`, with fewer random points than
    `discover verify`): {"passed", "problem" (None or one line), "points", "checks"}."""
    result = check_axioms(drift_fn, VerifyConfig(axiom_random_points=1024))
    return {**result.to_dict(), "problem": "; ".join(result.failures) or None}
