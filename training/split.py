"""Development / test split of a feature set, and the cross-validation folds inside the development rows.

Reads a `FeatureSet` frame; returns the development rows (`Split.train`: everything the model may
learn from before the test metrics are recorded), the test rows, and the folds (positions into
`Split.train`), plus a JSON-able description (logged as the run tag `tenure.split`). Nothing is
written.

Out of time (several snapshots): the latest `test_snapshots` snapshots are the test period. The
development rows are the snapshots before it whose label window `[s, s + gap_months)` closes by
the first test snapshot (`gap_months` defaults to the task's label horizon): on the day a model
starts scoring the test period, the labels of the last `horizon - 1` monthly snapshots before it
are not known yet. The folds are an expanding window over the development snapshots: the last
`cv.time_folds` blocks of `valid_snapshots` snapshots each validate, in time order; fold `i`
trains on every development snapshot whose label window closes by the first snapshot of its
validation block (the same embargo), so no training label overlaps the block it is judged on.
When the oldest blocks would have no training snapshot left (a long label horizon on a short
history), the blocks shrink, down to one snapshot, until `cv.time_folds` folds fit; failing that,
the block size with the most folds (at least one) is used.

Random (a single snapshot, e.g. a public table with no time column): a stratified, seeded test
holdout of `test_fraction`, then `cv.folds` stratified, seeded folds over the rest; every row
of the development set is validated exactly once (out-of-fold). `kind: random` can be forced
for multi-snapshot data; `out_of_time` fails on one snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from configs import ConfigError, TenureError
from configs.train import SplitConfig

Fold = tuple[np.ndarray, np.ndarray]  # (training positions, validation positions) into Split.train


class SplitError(TenureError, ValueError):
    """The feature set cannot be split as configured (too few snapshots, too few rows of a class)."""


@dataclass
class Split:
    train: pd.DataFrame  # the development rows: cross-validated on, then refitted on
    test: pd.DataFrame
    kind: str  # "out_of_time" | "random"
    gap_months: int
    folds: list[Fold] = field(default_factory=list)

    @property
    def valid(self) -> pd.DataFrame:
        """The development rows some fold validates (their predictions are out of fold), in order."""
        return self.train.iloc[self.validated_positions()]

    def validated_positions(self) -> np.ndarray:
        if not self.folds:
            return np.arange(0)
        return np.unique(np.concatenate([v for _, v in self.folds]))

    def describe(self, time_column: str) -> dict[str, Any]:
        """`{"kind", "train": [first, last], "valid": [...], "test": [...], "folds": [...], ...}`, ISO dates."""

        def span(df: pd.DataFrame) -> list[str]:
            times = df[time_column]
            return [str(pd.Timestamp(times.min()).date()), str(pd.Timestamp(times.max()).date())]

        valid = self.valid
        folds = [{"train": span(self.train.iloc[t]), "valid": span(self.train.iloc[v]),
                  "rows": {"train": len(t), "valid": len(v)}} for t, v in self.folds]
        return {
            "kind": self.kind,
            "train": span(self.train),
            "valid": span(valid),
            "test": span(self.test),
            "gap_months": self.gap_months,
            "cv": "time_series" if self.kind == "out_of_time" else "stratified_kfold",
            "folds": folds,
            "rows": {"train": len(self.train), "valid": len(valid), "test": len(self.test)},
            "snapshots": {p: int(getattr(self, p)[time_column].nunique()) for p in ("train", "valid", "test")},
        }


def split_featureset(frame: pd.DataFrame, time_column: str, label: str, horizon_months: int,
                     cfg: SplitConfig, seed: int, *, folds: int = 5, time_folds: int = 3,
                     source: str = "the feature set") -> Split:
    """Split `frame` as `cfg` says; the test part and every fold's validation part hold both classes.

    `folds` / `time_folds`: the number of stratified / expanding-window folds; `source` names the
    data in errors (the feature-set file)."""
    snapshots = sorted(pd.unique(frame[time_column]))
    kind = cfg.kind
    if kind == "auto":
        kind = "out_of_time" if len(snapshots) > 1 else "random"
    if kind == "out_of_time":
        if len(snapshots) < 2:
            raise ConfigError("split.kind is out_of_time but the feature set has a single snapshot; "
                              "use split.kind: random (or auto)")
        gap = horizon_months if cfg.gap_months is None else cfg.gap_months
        split = _out_of_time(frame, time_column, snapshots, cfg, gap, time_folds)
    else:
        split = _random(frame, label, cfg, seed, folds, source)
    y_test = split.test[label]
    if y_test.nunique() < 2:
        raise SplitError(
            f"the test split has {len(y_test)} rows and only label value(s) {sorted(y_test.unique().tolist())}; "
            "it needs both classes: use more data or change split.test_snapshots"
        )
    y_dev = split.train[label].to_numpy()
    for i, (t, v) in enumerate(split.folds, start=1):
        for part, idx in (("training", t), ("validation", v)):
            if len(np.unique(y_dev[idx])) < 2:
                raise SplitError(
                    f"{source}: fold {i} of {len(split.folds)} has {len(idx)} {part} rows with only label value(s) "
                    f"{sorted(np.unique(y_dev[idx]).tolist())}; it needs both classes: use more data or lower "
                    "cv.time_folds / split.valid_snapshots")
    return split


def time_series_folds(times: pd.Series, block: int, n_folds: int, gap_months: int) -> list[Fold]:
    """Expanding-window folds over the snapshots in `times` (positions), with the label-window embargo.

    The last `n_folds` blocks of `block` snapshots validate; each fold trains on the snapshots `s`
    with `s + gap_months <= ` the block's first snapshot. Oldest folds without a training snapshot
    are left out; an empty list means not even one fold fits.
    """
    t = pd.to_datetime(times).to_numpy()
    snaps = [pd.Timestamp(s) for s in np.unique(t)]
    offset = pd.DateOffset(months=gap_months)
    folds: list[Fold] = []
    for i in range(n_folds):
        end = len(snaps) - i * block
        start = end - block
        if start <= 0:
            break
        valid = snaps[start:end]
        train = [s for s in snaps[:start] if s + offset <= valid[0]]
        if not train:
            break
        folds.append((np.flatnonzero(np.isin(t, np.array(train, dtype="datetime64[ns]"))),
                      np.flatnonzero(np.isin(t, np.array(valid, dtype="datetime64[ns]")))))
    return folds[::-1]  # oldest first


def _out_of_time(frame: pd.DataFrame, time_column: str, snapshots: list[Any], cfg: SplitConfig,
                 gap: int, n_folds: int) -> Split:
    snaps = [pd.Timestamp(s) for s in snapshots]
    offset = pd.DateOffset(months=gap)
    need = f"{cfg.test_snapshots} test snapshots and validation blocks of {cfg.valid_snapshots} with a {gap}-month gap"
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
    times = pd.to_datetime(frame[time_column])
    dev = frame.loc[times.isin(before_test).to_numpy()]
    folds = time_series_folds(dev[time_column], cfg.valid_snapshots, n_folds, gap)
    # a long label horizon leaves room for fewer blocks than folds asked for (default_risk: 11
    # development snapshots, a 6-month embargo and blocks of 3 fit one fold): smaller blocks,
    # down to one snapshot, until the folds fit; the most folds win, then the larger block
    for block in range(cfg.valid_snapshots - 1, 0, -1):
        if len(folds) >= n_folds:
            break
        smaller = time_series_folds(dev[time_column], block, n_folds, gap)
        if len(smaller) > len(folds):
            folds = smaller
    if not folds:
        raise SplitError(
            f"no training snapshot is left before the validation block starting "
            f"{before_test[-cfg.valid_snapshots].date()} after the {gap}-month gap ({len(snaps)} snapshots, "
            f"{snaps[0].date()}..{snaps[-1].date()}); lower split.valid_snapshots, split.test_snapshots or "
            "split.gap_months, or use split.kind: random"
        )
    test_rows = frame.loc[times.isin(test).to_numpy()]
    return Split(train=dev, test=test_rows, kind="out_of_time", gap_months=gap, folds=folds)


def min_class_rows(n_folds: int, test_fraction: float) -> int:
    """The fewest rows of a class a random split with `n_folds` folds can take: every fold's
    validation part gets one after the test holdout takes its share."""
    return int(np.ceil(n_folds / (1 - test_fraction))) + 1


def _random(frame: pd.DataFrame, label: str, cfg: SplitConfig, seed: int, n_folds: int, source: str) -> Split:
    from sklearn.model_selection import StratifiedKFold, train_test_split

    y = frame[label].to_numpy().astype(np.int64)
    counts = np.bincount(y, minlength=2)
    need = min_class_rows(n_folds, cfg.test_fraction)
    if counts.min() < need:
        cls = int(np.argmin(counts))
        raise SplitError(f"{source}: label {label} has {int(counts[cls])} rows of class {cls} (of {len(y)}); "
                         f"a {cfg.test_fraction:.0%} test holdout and {n_folds}-fold cross-validation need at "
                         f"least {need}: add rows or lower cv.folds")
    idx = np.arange(len(frame))
    dev, test = train_test_split(idx, test_size=cfg.test_fraction, stratify=y, random_state=seed)
    dev = np.sort(dev)
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = [(np.sort(t), np.sort(v)) for t, v in skf.split(dev, y[dev])]
    return Split(train=frame.iloc[dev], test=frame.iloc[np.sort(test)], kind="random", gap_months=0, folds=folds)
