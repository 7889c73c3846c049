"""The `discover` command: its parser and entry point.

Bad input is one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import sys

from inner_loop.cpu import configure_cpu
from inner_loop.errors import ConfigError

from discover.cli.args import EXIT_USAGE, Parser
from discover.sweep.distributed import initialize_distributed


def build_parser() -> Parser:
    # The commands' modules import evosax, jax and matplotlib; after initialize_distributed.
    from discover.cli import compare, distill, export, sweep, train, verify

    parser = Parser(prog="discover", description="Discover drift functions for mirror learning.")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    train.add_train_command(sub)
    sweep.add_sweep_command(sub)
    verify.add_verify_command(sub)
    export.add_export_commands(sub)
    compare.add_compare_command(sub)
    distill.add_distill_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    configure_cpu()  # before jax starts (importing this module does not start it)
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["sweep"] and "--distributed" in argv:
        # Before the parser: building it imports evosax, which starts JAX's backend, and
        # jax.distributed.initialize() must come first.
        try:
            initialize_distributed()
        except ConfigError as err:
            print(f"discover sweep: error: {err}", file=sys.stderr)
            return EXIT_USAGE
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler(args) or 0
    except ConfigError as err:
        print(f"discover {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"discover {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
