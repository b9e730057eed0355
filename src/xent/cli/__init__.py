"""The ``xent`` command line: one entry point, one module per subcommand.

Each subcommand module defines ``register(subparsers) -> None`` (adding its
parser with ``set_defaults(run=...)``) and a ``run(args) -> int``. Errors the
user can fix raise :class:`CLIError`; :func:`main` prints them as one line on
stderr and exits with status 2, never with a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from xent import __version__

__all__ = ["CLIError", "main"]

# Subcommand modules, in the order `xent --help` lists them.
SUBCOMMANDS = ("score", "compare", "explain")


class CLIError(Exception):
    """A user error: printed as ``xent: error: <message>`` with exit status 2."""


# The optional dependencies the commands import, and the extra of the xent-ml distribution
# (pyproject.toml [project.optional-dependencies]) that installs each.
EXTRAS = {"pyarrow": "cli", "matplotlib": "cli", "dask": "dask", "distributed": "dask"}


def install_hint(module: str, what: str) -> str:
    """``'xent score needs pyarrow, which is not installed: pip install "xent-ml[cli]"'``."""
    return f'{what} needs {module}, which is not installed: pip install "xent-ml[{EXTRAS.get(module, "cli")}]"'


def require(module: str, what: str) -> None:
    """Import the optional dependency ``module`` or raise a one-line :class:`CLIError` naming its extra."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise CLIError(install_hint(module, what)) from None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, like every other CLI error
        # main() prints "xent: error: "; name the subcommand ("explain binary") after it, not "xent" again
        command = self.prog.removeprefix("xent").strip()
        raise CLIError(f"{command}: {message} (see `{self.prog} --help`)" if command else
                       f"{message} (see `xent --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="xent",
        description="Cross-entropy done right: score prediction files and explain every number.",
        epilog="Run `xent COMMAND --help` for a command's options and examples.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"xent {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"xent.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"xent.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not hasattr(args, "run"):
            parser.print_help()
            return 2
        return int(args.run(args) or 0)
    except CLIError as exc:
        print(f"xent: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an optional dependency the up-front checks did not name
        root = (exc.name or "").partition(".")[0]
        if root not in EXTRAS:
            raise
        command = " ".join(["xent", *(a for a in (argv if argv is not None else sys.argv[1:])[:1])])
        print(f"xent: error: {install_hint(root, command)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xent: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `xent ... | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
