"""Argument helpers every command shares: one-line usage errors, seeds, counts, --set, outputs."""

from __future__ import annotations

import argparse

from inner_loop.errors import ConfigError
from inner_loop.settings import check_seed

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line (and exit status 2)."""

    def error(self, message):  # noqa: D401
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def seed_argument(text: str) -> int:
    """argparse type of a --seed: an integer in [0, MAX_SEED] (a one-line usage error if not)."""
    try:
        return check_seed(int(text))
    except (ValueError, ConfigError) as err:
        raise argparse.ArgumentTypeError(str(err) if isinstance(err, ConfigError) else f"{text!r} is not an integer")


def add_settings_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """`--set KEY=VALUE ...`: several pairs per --set, and --set repeatable (into `args.settings`)."""
    parser.add_argument("--set", dest="settings", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help=help)


def check_count(flag: str, value: int, minimum: int = 1, why: str = "it must be a positive integer") -> int:
    """ConfigError (one line) unless `value` >= `minimum`."""
    if value < minimum:
        raise ConfigError(f"{flag} {value} is not allowed; {why}")
    return value
