"""Helpers shared by the unit and integration tests, imported as `helpers.<module>`.

pytest puts `tests/` on the import path (`pythonpath` in pyproject's pytest settings), so a test
file anywhere under `tests/` imports them normally; no test module imports another.

- `serving`: tiny real LightGBM models, an MLflow registry holding them, the service in a subprocess;
- `featuresets`: a synthetic default-risk feature set written like `tenure features build` writes one;
- `cli`: the `tenure` CLI run in-process with every location under one home.
"""
