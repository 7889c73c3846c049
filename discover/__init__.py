"""What users touch: the `discover` command, run folders, reports."""

import inner_loop  # noqa: F401  (applies the XLA CPU flag before jax is first imported)

from discover.files.drift_file import LoadedDrift, load_drift  # noqa: E402

__all__ = ["LoadedDrift", "load_drift"]
