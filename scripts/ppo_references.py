"""Measure the PPO and untrained reference returns of every env of sweep presets, and store them.

The sweep's fitness is `(R - R_0) / (R_ppo - R_0)` on the same inner-loop config
(`discover.training.references`). This script trains PPO over many vmapped seeds for each training and held-out env
of the named presets and writes the results into `discover/data/ppo_references.json`
(replacing an entry that trains as the same config does), so sweeps look them up instead of re-measuring.

    python scripts/ppo_references.py --presets quick --seeds 16
    python scripts/ppo_references.py --presets quick --seeds 16 --untrained-only
    python scripts/ppo_references.py --presets quick,robust --missing-only
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from inner_loop.cpu import configure_cpu

configure_cpu()  # first: gymnax and evosax start jax when imported; a CPU device per core

import jax  # noqa: E402

from discover.files.atomic import write_json_atomic  # noqa: E402
from discover.training.references import (FORMAT_VERSION, find_reference, measure_reference, measure_untrained,  # noqa: E402
                                          reference_margin)
from discover.sweep.config import get_preset  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "..", "discover", "data", "ppo_references.json")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="quick", help="comma-separated sweep presets (default quick)")
    parser.add_argument("--seeds", type=int, default=16, help="PPO seeds per env (default 16)")
    parser.add_argument("--seed", type=int, default=12345, help="PRNG seed (default 12345)")
    parser.add_argument("--untrained-only", action="store_true",
                        help="keep stored PPO returns; measure the untrained policy's where its per-seed "
                             "returns are missing")
    parser.add_argument("--missing-only", action="store_true",
                        help="measure only the configs that have no stored entry (keep the others as they are)")
    args = parser.parse_args()

    with open(DATA) as f:
        data = json.load(f)
    entries = data["references"]
    for preset_name in args.presets.split(","):
        preset = get_preset(preset_name)
        for i, config in enumerate(preset.train_configs() + preset.test_configs()):
            key = jax.random.fold_in(jax.random.PRNGKey(args.seed), i)
            stored = find_reference(config, entries)
            if args.missing_only and stored is not None:
                continue
            if args.untrained_only and stored is not None:
                if "untrained_returns" in stored:  # the margin of check_learnable needs the per-seed returns
                    continue
                entry = {**stored, **measure_untrained(config, args.seeds, key)}
            else:
                entry = measure_reference(config, args.seeds, key)
            # Replace any entry that trains as this config does (it would match the same sweeps).
            entries = [e for e in entries if find_reference(config, [e]) is None] + [entry]
            print(f"{preset_name}: PPO on {config.env_id}, {config.env_steps:,} steps, {args.seeds} seeds: "
                  f"{entry['ppo_reference_return']:.2f} +- {entry['std']:.2f} (untrained "
                  f"{entry['untrained_return']:.2f}; margin {reference_margin(entry):.3g})", flush=True)
            write_json_atomic(DATA, {"format_version": FORMAT_VERSION, "note": data.get("note", ""),
                                     "references": entries})
    return 0


if __name__ == "__main__":
    sys.exit(main())
