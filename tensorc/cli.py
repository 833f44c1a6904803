"""The ``tensorc`` command line (also ``python -m tensorc.cli``).

Each subcommand lives in one ``_add_<name>(subparsers)`` function that declares its parser
and sets ``func`` to the handler; register it by appending that function to ``SUBCOMMANDS``.
Handlers import what they need inside themselves, so that ``tensorc info`` works even when
the compiler proper does not import, and so that start-up stays fast::

    def _add_compile(sub):
        p = sub.add_parser("compile", help="compile a model to a shared library")
        p.add_argument("model")
        p.set_defaults(func=_cmd_compile)

    def _cmd_compile(args) -> int:
        from tensorc import ...
        return 0

    SUBCOMMANDS.append(_add_compile)

A handler returns the process exit status (``None`` counts as 0).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Sequence

# ---------------------------------------------------------------------------------- info


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="show versions, host CPU, threads, cache directory and optional backends",
        description="Show what tensorc sees on this machine.",
    )
    p.add_argument("--json", action="store_true", help="print the same information as JSON")
    p.set_defaults(func=_cmd_info)


def _cmd_info(args: argparse.Namespace) -> int:
    from tensorc import info

    data = info.collect()
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=False))
    else:
        print(info.format_text(data))
    return 0


# ---------------------------------------------------------------------------- the parser


def _model_commands():
    from tensorc.cli_bench import COMMANDS as BENCH
    from tensorc.cli_models import COMMANDS
    from tensorc.cli_tune import COMMANDS as TUNE
    return COMMANDS + BENCH + TUNE


#: Functions that each add one subcommand to the parser (see the module docstring).
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_info,
    *_model_commands(),
]


def _version() -> str:
    from tensorc.info import tensorc_version

    return tensorc_version()


class _VersionAction(argparse.Action):
    """``--version`` that looks the version up only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="print tensorc's version and exit"):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"tensorc {_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tensorc",
        description="tensorc: a tensor compiler (tensor expressions, schedules, LLVM codegen).",
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        status = func(args)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `tensorc info | head -3`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return 130
    return 0 if status is None else int(status)


if __name__ == "__main__":
    sys.exit(main())
