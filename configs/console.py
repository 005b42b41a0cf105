"""Shared CLI plumbing: turning user errors into one clear line and a non-zero exit, and the
`--settings` option every command takes."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from configs import TenureError

F = TypeVar("F", bound=Callable[..., Any])

SettingsOpt = Annotated[Path | None, typer.Option("--settings", help="YAML file overriding configs/settings.yaml.")]


def user_errors(func: F) -> F:
    """Wrap a command so a `TenureError` prints `error: <message>` on stderr and exits 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TenureError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]
