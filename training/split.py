"""Train / validation / test split of a feature set: out-of-time, or stratified random for one snapshot.

Reads a `FeatureSet` frame; returns the three row sets and a JSON-able description (logged as the
run tag `tenure.split`). Nothing is written.

Out of time (several snapshots): the latest `test_snapshots` snapshots are the test period; the
`valid_snapshots` snapshots before it are the validation period; older snapshots train. Between
periods there is an embargo: a snapshot `s` stays in an earlier period only if its label window
`[s, s + gap_months)` closes by the first snapshot of the next period (`gap_months` defaults to
the task's label horizon). The reason: on the day a model starts scoring the test period, the
labels of the last `horizon - 1` monthly snapshots before it are not known yet, so training or
tuning on them would use outcomes from the test period itself. With monthly snapshots and a
6-month horizon this drops 5 snapshots before the validation period and 5 before the test period.

Random (a single snapshot, e.g. a public table with no time column): a stratified, seeded test
holdout of `test_fraction`, then a stratified validation share `valid_fraction` carved from the
rest. `kind: random` can be forced for multi-snapshot data; `out_of_time` fails on one snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from configs import ConfigError, TenureError
from configs.train import SplitConfig


class SplitError(TenureError, ValueError):
    """The feature set cannot be split as configured (too few snapshots, a split with one class)."""


@dataclass
class Split:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    kind: str  # "out_of_time" | "random"
    gap_months: int

    def describe(self, time_column: str) -> dict[str, Any]:
        """`{"kind", "train": [first, last], "valid": [...], "test": [...], ...}` with ISO dates."""

        def span(df: pd.DataFrame) -> list[str]:
            times = df[time_column]
            return [str(pd.Timestamp(times.min()).date()), str(pd.Timestamp(times.max()).date())]

        return {
            "kind": self.kind,
            "train": span(self.train),
            "valid": span(self.valid),
            "test": span(self.test),
            "gap_months": self.gap_months,
            "rows": {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)},
            "snapshots": {p: int(getattr(self, p)[time_column].nunique()) for p in ("train", "valid", "test")},
        }


def split_featureset(frame: pd.DataFrame, time_column: str, label: str, horizon_months: int,
                     cfg: SplitConfig, seed: int) -> Split:
    """Split `frame` as `cfg` says; every part must hold both classes."""
    snapshots = sorted(pd.unique(frame[time_column]))
    kind = cfg.kind
    if kind == "auto":
        kind = "out_of_time" if len(snapshots) > 1 else "random"
    if kind == "out_of_time":
        if len(snapshots) < 2:
            raise ConfigError("split.kind is out_of_time but the feature set has a single snapshot; "
                              "use split.kind: random (or auto)")
        gap = horizon_months if cfg.gap_months is None else cfg.gap_months
        split = _out_of_time(frame, time_column, snapshots, cfg, gap)
    else:
        gap = 0
        split = _random(frame, label, cfg, seed)
    for part in ("train", "valid", "test"):
        y = getattr(split, part)[label]
        if y.nunique() < 2:
            raise SplitError(
                f"the {part} split has {len(y)} rows and only label value(s) {sorted(y.unique().tolist())}; "
                "it needs both classes: use more data or change split.test_snapshots / valid_snapshots"
            )
    return split


def _out_of_time(frame: pd.DataFrame, time_column: str, snapshots: list[Any], cfg: SplitConfig,
                 gap: int) -> Split:
    snaps = [pd.Timestamp(s) for s in snapshots]
    offset = pd.DateOffset(months=gap)
    need = f"{cfg.test_snapshots} test + {cfg.valid_snapshots} valid snapshots with a {gap}-month gap"
    if len(snaps) <= cfg.test_snapshots:
        raise SplitError(f"the feature set has {len(snaps)} snapshots, too few for {need} and training; "
                         "lower split.test_snapshots or use split.kind: random")
    test = snaps[-cfg.test_snapshots:]
    before_test = [s for s in snaps if s < test[0] and s + offset <= test[0]]
    if len(before_test) <= cfg.valid_snapshots:
        raise SplitError(
            f"the feature set has {len(snaps)} snapshots ({snaps[0].date()}..{snaps[-1].date()}): too few "
            f"for {need} and at least one training snapshot; lower split.valid_snapshots, "
            "split.test_snapshots or split.gap_months, or use split.kind: random"
        )
    valid = before_test[-cfg.valid_snapshots:]
    train = [s for s in before_test if s < valid[0] and s + offset <= valid[0]]
    if not train:
        raise SplitError(
            f"no training snapshot is left before the validation period {valid[0].date()} after the "
            f"{gap}-month gap ({len(snaps)} snapshots, {snaps[0].date()}..{snaps[-1].date()}); lower "
            "split.valid_snapshots, split.test_snapshots or split.gap_months, or use split.kind: random"
        )
    times = pd.to_datetime(frame[time_column])

    def rows(chosen: list[pd.Timestamp]) -> pd.DataFrame:
        return frame.loc[times.isin(chosen).to_numpy()]

    return Split(train=rows(train), valid=rows(valid), test=rows(test), kind="out_of_time", gap_months=gap)


def _random(frame: pd.DataFrame, label: str, cfg: SplitConfig, seed: int) -> Split:
    from sklearn.model_selection import train_test_split

    y = frame[label].to_numpy()
    if np.bincount(y.astype(np.int64), minlength=2).min() < 3:
        raise SplitError(f"label {label} has fewer than 3 rows of one class; a stratified split needs more")
    idx = np.arange(len(frame))
    rest, test = train_test_split(idx, test_size=cfg.test_fraction, stratify=y, random_state=seed)
    train, valid = train_test_split(rest, test_size=cfg.valid_fraction, stratify=y[rest], random_state=seed)
    return Split(train=frame.iloc[np.sort(train)], valid=frame.iloc[np.sort(valid)],
                 test=frame.iloc[np.sort(test)], kind="random", gap_months=0)
