"""Monitoring: drift, data quality and performance of live traffic per model version, alert levels,
and the compliance pack.

`monitor` (the `tenure monitor` job), `drift` (Evidently's per-feature tests, computed exactly
and fast), `predictions` (reading the prediction log), `quality`, `performance` (CBPE estimate
and measured metrics), `alerts` (levels and exit statuses), `reports` (Evidently reports, MLflow
logging, drift history), `summary` and `html` (self-contained pages), `compliance`
(`tenure compliance`), `registry` (model versions and their artefacts), `commands` (CLI).
"""
