"""The window's overview page (`index.html`): levels, drifted features, quality, performance, links.

Reads the monitoring result (the dict of `MonitorResult.to_dict`); returns one self-contained HTML
page (see `monitoring.html`). The Evidently reports it links to sit in the same folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monitoring import html as h

REPORT_LINKS = (("data_drift_html", "Data drift (Evidently)"), ("data_quality_html", "Data quality (Evidently)"),
                ("performance_html", "Classification performance (Evidently)"),
                ("monitor_json", "Full result (JSON)"))


def render_summary(result: Mapping[str, Any]) -> str:
    """The overview page of one monitoring run."""
    w = result["window"]
    perf = result.get("performance") or {}
    est = perf.get("estimate") or {}
    measured = perf.get("measured")
    drift = result["drift"]
    pred = result.get("prediction_drift") or {}
    title = f"Monitoring: {result['model_name']} v{result['version']}"
    parts = [
        f"<h1>{h.esc(title)} {h.badge(result['level'])}</h1>",
        f'<p class="muted">window {h.esc(w["name"])}: scored {h.esc(w.get("first_scored_at"))} to '
        f'{h.esc(w.get("last_scored_at"))}; run {h.esc(result["run_id"])}; created {h.esc(result["created_at"])}</p>',
        _reference_line(result.get("reference") or {}),
        h.cards([
            ("logged rows", h.esc(h.fmt(result["rows"]))),
            ("features drifted", h.esc(f"{len(drift['drifted_features'])} of {drift['judged_features']}")),
            (f"prediction drift ({pred.get('method_name') or 'n/a'})", h.esc(h.fmt(pred.get("score")))),
            ("ESTIMATED ROC AUC (CBPE)", h.esc(h.fmt(est.get("roc_auc")))),
            ("measured ROC AUC", h.esc(h.fmt((measured or {}).get("roc_auc")))),
            ("test ROC AUC at training", h.esc(h.fmt(perf.get("reference_roc_auc")))),
        ]),
        "<h2>Checks</h2>",
        h.table(["check", "level", "value", "warn from", "alert from", "detail"],
                [(c["name"], h.badge(c["level"]), _num(c["value"]), _num(c["warn"]), _num(c["alert"]),
                  ("[estimate] " if c.get("estimated") else "") + c["detail"]) for c in result["checks"]],
                raw=(1,)),
    ]
    links = [(label, result["files"][key]) for key, label in REPORT_LINKS if key in (result.get("files") or {})]
    if links:
        parts.append("<h2>Reports</h2><ul>" + "".join(
            f'<li><a href="{h.esc(path)}">{h.esc(label)}</a></li>' for label, path in links) + "</ul>")
    parts.append("<h2>Drift per feature</h2>")
    parts.append('<p class="muted">Tests as Evidently\'s DataDriftPreset picks them, computed on all logged '
                 "rows. Distances drift at or above the threshold, p-values below it.</p>")
    rows = []
    for name, c in sorted(drift["columns"].items(), key=lambda kv: (not kv[1]["drifted"], kv[0])):
        verdict = "excluded" if c["excluded"] else ("DRIFT" if c["drifted"] else ("-" if c["method"] is None else "ok"))
        rows.append((name, c["kind"], c["method_name"] or c["note"], c["threshold"], c["score"], verdict,
                     c["reference_values"], c["current_values"]))
    parts.append(h.table(["feature", "kind", "test", "threshold", "score", "verdict", "reference values",
                          "window values"], rows))
    issues = [q for q in result["quality"].values() if q["invalid"] or q["missing_increase"] > 0.01]
    parts.append("<h2>Data quality</h2>")
    if issues:
        parts.append(h.table(
            ["feature", "missing", "missing at training", "below min", "above max", "not a number", "new categories"],
            [(q["feature"], q["missing_share"], q["reference_missing_share"], q["below_min"], q["above_max"],
              q["non_numeric"], ", ".join(f"{k} ({v})" for k, v in q["new_categories"].items()) or "-")
             for q in issues]))
    else:
        parts.append("<p>No feature has new categories, out-of-range values or more missing values than at "
                     "training.</p>")
    parts.append("<h2>Performance</h2>")
    band = ""
    if est.get("low") is not None:
        band = f" (95% band {h.fmt(est['low'])} to {h.fmt(est['high'])})"
    parts.append(f"<p><b>Estimate</b> (before outcomes; CBPE, labels assumed Bernoulli(probability)): ROC AUC "
                 f"{h.esc(h.fmt(est.get('roc_auc')))}{h.esc(band)}, expected positive rate "
                 f"{h.esc(h.fmt(est.get('expected_positive_rate')))}.</p>")
    if measured:
        parts.append(f"<p><b>Measured</b> on {h.esc(h.fmt(perf.get('labelled_rows')))} labelled rows "
                     f"(label {h.esc(perf.get('label'))}):</p>")
        parts.append(h.table(["metric", "value"], sorted(measured.items())))
    elif perf.get("label"):
        parts.append(f"<p>Outcomes joined: {h.esc(h.fmt(perf.get('labelled_rows')))} labelled rows, too few "
                     "(or one class only) to measure; the estimate is used.</p>")
    return h.page(title, "".join(parts))


def _reference_line(ref: Mapping[str, Any]) -> str:
    if not ref:
        return ""
    span = " to ".join(ref.get("snapshots") or []) or "unknown snapshots"
    what = {"season": "rows from the same calendar months, after its training period",
            "test": "test period"}.get(ref.get("kind") or "", "training rows")
    note = f" ({h.esc(ref['note'])})" if ref.get("note") else ""
    return (f"<p>Compared with the version's {what}: {h.esc(h.fmt(ref.get('rows')))} rows, snapshots "
            f"{h.esc(span)}{note}.</p>")


def _num(value: Any) -> Any:
    """Whole numbers (row counts) without decimals."""
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1:
        return int(value)
    return value
