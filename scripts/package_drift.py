"""Ship a discovered drift with the package: copy an exported drift file to
`discover/data/drifts/<name>.drift.npz`, adding where its evaluation is, so every command
takes it by name (`discover compare <name> ...`, `discover.load_drift("<name>")`).

    python scripts/package_drift.py runs/transfer-v1.drift.npz transfer-v1 \\
        --evaluation "docs/results/transfer/transfer: discover compare, 16 fresh seeds"
"""

from __future__ import annotations

import argparse
import os
import sys

from discover.files.drift_file import PACKAGED_SUFFIX, read_drift_file, save_drift

FOLDER = os.path.join(os.path.dirname(__file__), "..", "discover", "data", "drifts")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("drift_file")
    parser.add_argument("name", help="the name commands will take (letters, digits, '-')")
    parser.add_argument("--evaluation", required=True, help="where its comparison report is, in a line")
    args = parser.parse_args()
    loaded = read_drift_file(args.drift_file)
    provenance = {**loaded.metadata.get("provenance", {}), "evaluation": args.evaluation,
                  "packaged_from": os.path.basename(args.drift_file)}
    os.makedirs(FOLDER, exist_ok=True)
    path = os.path.join(FOLDER, args.name + PACKAGED_SUFFIX)
    save_drift(path, loaded.drift, loaded.params, provenance, axiom_check=loaded.metadata["axiom_check"])
    print(f"wrote {os.path.normpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
