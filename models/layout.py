"""The run layout: what a training run and a promotion write, and what serving, monitoring and
compliance read, named once.

Aliases of registered model versions, the promotion statuses and version tags, and the paths of
the artefacts a `tenure train` run logs. Training writes them (`training.train`,
`training.promote`); everyone else reads them through these names, never through literals.
"""

from __future__ import annotations

# aliases on a registered model
CHAMPION = "champion"
CHALLENGER = "challenger"

# promotion decisions, recorded on the challenger version (tags) and as a JSON record artefact
PROMOTED, REFUSED, FORCED = "promoted", "refused", "forced"
TAG_STATUS = "tenure.promotion.status"
TAG_AT = "tenure.promotion.at"
TAG_BY = "tenure.promotion.by"
TAG_REASON = "tenure.promotion.reason"
TAG_RECORD = "tenure.promotion.record"
TAG_SUPERSEDED_BY = "tenure.promotion.superseded_by"
TAG_SUPERSEDED_AT = "tenure.promotion.superseded_at"
RECORD_DIR = "promotion"  # <run>/promotion/<UTC time>-v<version>.json
# the run a registered version came from (MLflow's own run_id is the fallback)
TAG_RUN_ID = "tenure.run_id"

# the MLflow model of a run and the Tenure artefact folder inside it
MODEL_ARTIFACT_PATH = "model"
ARTIFACT_KEY = "tenure_model"

# artefacts of a training run
REFERENCE_ARTIFACT = "reference/reference.parquet"  # training rows, the monitoring reference
# feature-set rows a version was not trained on (validation, test and later snapshots; for a random
# split its validation and test rows): id, time and the model's raw features. Monitoring builds its
# same-season and test-period references from them, on any machine that reaches the tracking server.
UNSEEN_ROWS_ARTIFACT = "reference/unseen_rows.parquet"
TEST_PREDICTIONS_ARTIFACT = "evaluation/test_predictions.parquet"
VALID_PREDICTIONS_ARTIFACT = "evaluation/valid_predictions.parquet"
METRICS_ARTIFACT = "evaluation/metrics.json"
TRAIN_CONFIG_ARTIFACT = "config/train_config.json"
