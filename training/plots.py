"""Evaluation plots of a trained model, as PNG files (logged under the run's `plots/`).

Reads labels, probabilities, SHAP contributions and gain importances as arrays; writes
`roc.png`, `precision_recall.png`, `calibration.png`, `cumulative_gains.png`,
`shap_summary.png` and `feature_importance.png` into a folder. Matplotlib runs on the Agg
backend (no display needed); the backend is chosen when a plot is drawn, not on import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

PLOT_FILES: tuple[str, ...] = ("roc.png", "precision_recall.png", "calibration.png", "cumulative_gains.png",
                               "shap_summary.png", "feature_importance.png")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def plot_roc(y: np.ndarray, curves: Mapping[str, np.ndarray], path: Path, title: str) -> Path:
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, p in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC: {title}")
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_precision_recall(y: np.ndarray, curves: Mapping[str, np.ndarray], path: Path, title: str) -> Path:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, p in curves.items():
        prec, rec, _ = precision_recall_curve(y, p)
        ax.plot(rec, prec, label=f"{name} (AP {average_precision_score(y, p):.3f})")
    ax.axhline(np.mean(y), ls="--", c="grey", lw=1, label=f"base rate {np.mean(y):.3f}")
    ax.set(xlabel="recall", ylabel="precision", title=f"Precision-recall: {title}")
    ax.legend(loc="upper right")
    return _save(fig, path)


def plot_calibration(y: np.ndarray, curves: Mapping[str, np.ndarray], path: Path, title: str,
                     bins: int = 10) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, p in curves.items():
        which = np.clip((np.asarray(p) * bins).astype(int), 0, bins - 1)
        xs, ys = [], []
        for b in range(bins):
            sel = which == b
            if sel.any():
                xs.append(float(np.mean(np.asarray(p)[sel])))
                ys.append(float(np.mean(np.asarray(y)[sel])))
        ax.plot(xs, ys, marker="o", label=name)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect")
    top = float(max(np.quantile(np.concatenate([np.asarray(p) for p in curves.values()]), 0.995), np.mean(y) * 2))
    lim = min(1.0, max(0.05, top * 1.1))
    ax.set(xlim=(0, lim), ylim=(0, lim), xlabel="mean predicted probability", ylabel="observed rate",
           title=f"Calibration: {title}")
    ax.legend(loc="upper left")
    return _save(fig, path)


def plot_cumulative_gains(y: np.ndarray, curves: Mapping[str, np.ndarray], path: Path, title: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    y = np.asarray(y, dtype=float)
    n = len(y)
    for name, p in curves.items():
        order = np.argsort(-np.asarray(p), kind="stable")
        gains = np.concatenate([[0.0], np.cumsum(y[order]) / y.sum()])
        ax.plot(np.arange(n + 1) / n, gains, label=name)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="random")
    ax.axvline(0.1, ls=":", c="black", lw=1)
    ax.set(xlabel="share of customers contacted (highest scores first)", ylabel="share of positives captured",
           title=f"Cumulative gains: {title}")
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_shap_summary(contributions: np.ndarray, values: np.ndarray, feature_names: Sequence[str], path: Path,
                      title: str, top: int = 15, seed: int = 0) -> Path:
    """Beeswarm-style summary: per feature, each row's SHAP value (x) coloured by its feature value."""
    plt = _pyplot()
    contrib = np.asarray(contributions)[:, : len(feature_names)]
    importance = np.abs(contrib).mean(axis=0)
    order = np.argsort(-importance, kind="stable")[:top][::-1]
    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=(7, 0.38 * len(order) + 1.5))
    for pos, j in enumerate(order):
        v = values[:, j].astype(float)
        finite = np.isfinite(v)
        colour = np.full(len(v), 0.5)
        if finite.sum() > 1:
            ranks = np.argsort(np.argsort(v[finite], kind="stable"), kind="stable")
            colour[finite] = ranks / max(1, finite.sum() - 1)
        jitter = rng.uniform(-0.3, 0.3, len(v))
        ax.scatter(contrib[:, j], pos + jitter, c=colour, cmap="coolwarm", s=6, alpha=0.6, vmin=0, vmax=1,
                   linewidths=0)
    ax.axvline(0, c="grey", lw=1)
    ax.set_yticks(range(len(order)), [feature_names[j] for j in order])
    ax.set(xlabel="SHAP value (log-odds contribution; red = high feature value)", title=f"SHAP summary: {title}")
    return _save(fig, path)


def plot_feature_importance(gain: np.ndarray, feature_names: Sequence[str], path: Path, title: str,
                            top: int = 20) -> Path:
    plt = _pyplot()
    gain = np.asarray(gain, dtype=float)
    order = np.argsort(-gain, kind="stable")[:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(order) + 1.5))
    total = gain.sum() or 1.0
    ax.barh(range(len(order)), gain[order] / total)
    ax.set_yticks(range(len(order)), [feature_names[j] for j in order])
    ax.set(xlabel="share of total gain", title=f"Feature importance (gain): {title}")
    return _save(fig, path)


def write_plots(out_dir: Path, *, y: np.ndarray, probability: np.ndarray, baseline_probability: np.ndarray | None,
                contributions: np.ndarray, shap_values: np.ndarray, gain: np.ndarray,
                feature_names: Sequence[str], title: str, bins: int = 10, seed: int = 0) -> list[Path]:
    """Every plot in `PLOT_FILES` for the test period, into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    curves = {"model": probability}
    if baseline_probability is not None:
        curves["baseline (default parameters)"] = baseline_probability
    return [
        plot_roc(y, curves, out_dir / "roc.png", title),
        plot_precision_recall(y, curves, out_dir / "precision_recall.png", title),
        plot_calibration(y, {"model": probability}, out_dir / "calibration.png", title, bins),
        plot_cumulative_gains(y, curves, out_dir / "cumulative_gains.png", title),
        plot_shap_summary(contributions, shap_values, feature_names, out_dir / "shap_summary.png", title, seed=seed),
        plot_feature_importance(gain, feature_names, out_dir / "feature_importance.png", title),
    ]
