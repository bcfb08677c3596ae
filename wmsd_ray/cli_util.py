"""Small helpers shared by the command-line entry points."""
from __future__ import annotations

import argparse
import functools
import sys
from typing import Callable

from .errors import WmsdError


def exits_cleanly_on_user_error(main: Callable[..., int]) -> Callable[..., int]:
    """Turn a WmsdError into one ``error:`` line on stderr and exit status 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except WmsdError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return wrapper


def config_parser(prog: str, doc: str | None, example: str) -> argparse.ArgumentParser:
    """A parser with the arguments every entry point shares: ``--config`` and dotted overrides."""
    ap = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="YAML preset (default: configs/embedded.yaml)")
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=f"dotted config overrides, e.g. {example}")
    return ap
