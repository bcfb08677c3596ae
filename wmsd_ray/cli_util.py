"""Small helpers shared by the command-line entry points."""
from __future__ import annotations

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
