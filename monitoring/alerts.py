"""Alert levels: turning measured values into ok / warn / alert, per check and overall.

Reads values and the thresholds of `configs/monitor.yaml`; writes nothing. A check is `alert`
when its value reaches the alert bound, else `warn` when it reaches the warn bound, else `ok`;
a check with no value (nothing to measure it on) is `not_measured`, never `ok`. The overall level
is the worst measured check (`not_measured` only when no check was measured). `--fail-on` maps levels to exit statuses: 0 ok, 10 warn,
20 alert (2 stays the status of a usage or input error, see `configs.console`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

Level = Literal["not_measured", "ok", "warn", "alert"]
NOT_MEASURED: Level = "not_measured"
LEVELS: tuple[Level, ...] = ("ok", "warn", "alert")  # measured levels, by severity
EXIT_STATUS: dict[str, int] = {NOT_MEASURED: 0, "ok": 0, "warn": 10, "alert": 20}


def level_for(value: float | None, warn: float, alert: float) -> Level:
    """`alert` if value >= alert, `warn` if value >= warn, else `ok`; None or NaN: `not_measured`."""
    if value is None or value != value:  # None or NaN
        return NOT_MEASURED
    if value >= alert:
        return "alert"
    if value >= warn:
        return "warn"
    return "ok"


def worst(levels: Iterable[str]) -> Level:
    """The most severe measured level of `levels` (`ok` when there are none; `not_measured` when
    every one is)."""
    levels = list(levels)
    measured = [LEVELS.index(lv) for lv in levels if lv != NOT_MEASURED]  # type: ignore[arg-type]
    if levels and not measured:
        return NOT_MEASURED
    return LEVELS[max(measured, default=0)]


def reached(level: str, threshold: str) -> bool:
    """True when the measured `level` is at least `threshold` (`not_measured` reaches nothing)."""
    return level != NOT_MEASURED and LEVELS.index(level) >= LEVELS.index(threshold)  # type: ignore[arg-type]


@dataclass
class Check:
    """One monitored quantity, its level and the bounds that produced it."""

    name: str
    level: Level
    value: float | None
    warn: float | None
    alert: float | None
    detail: str
    estimated: bool = False  # the value is an estimate (performance before outcomes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_check(name: str, value: float | None, warn: float, alert: float, detail: str,
               *, estimated: bool = False) -> Check:
    return Check(name=name, level=level_for(value, warn, alert), value=value, warn=warn, alert=alert,
                 detail=detail, estimated=estimated)


def exit_status(level: str, fail_on: str | None) -> int:
    """The process exit status for `level` under `--fail-on` (None: always 0).

    `--fail-on warn`: 10 on warn, 20 on alert. `--fail-on alert`: 20 on alert, 0 otherwise.
    """
    if fail_on is None:
        return 0
    if fail_on not in ("warn", "alert"):
        raise ValueError(f"fail_on must be warn or alert, got {fail_on!r}")
    if reached(level, fail_on):
        return EXIT_STATUS[level]
    return 0
