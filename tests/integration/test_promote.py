"""`tenure promote` against a real MLflow registry on SQLite, with models trained by `train_task`.

One small synthetic dataset (generator + feature builder), churn models trained with a tiny
search budget: a good first model becomes champion; a weak challenger (two uninformative
features) is refused and the refusal recorded; `--force --reason` promotes it as forced; the
history reads all three decisions back. A random-split model is judged on its logged test rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from configs.data import DataConfig
from configs.features import FeaturesConfig
from configs.promote import load_promote_config
from configs.settings import Settings
from configs.train import TrainConfig, load_train_config
from models import load_spec
from models.layout import (
    FORCED,
    PROMOTED,
    REFUSED,
    TAG_AT,
    TAG_BY,
    TAG_REASON,
    TAG_RECORD,
    TAG_STATUS,
    TAG_SUPERSEDED_BY,
)
from models.registry import promotion_history
from tenure.cli import app
from training.gates import PromotionError
from training.promote import EXIT_REFUSED, promote

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Path]]:
    """Settings on a temp home (env points there too) and a churn feature set built in it."""
    from features.build import build_featuresets
    from features.synthetic import generate_dataset

    home = tmp_path_factory.mktemp("promote")
    settings = Settings(home=home)
    generate_dataset(DataConfig(customers=800, months=24, seed=7), settings.dataset_dir("it"), progress=False)
    paths = build_featuresets(settings.dataset_dir("it"), ["churn"], settings.features_dir / "it",
                              FeaturesConfig(min_history_months=6), progress=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TENURE_HOME", str(home))
        mp.setenv("MLFLOW_TRACKING_URI", settings.tracking_uri)
        mp.setenv("TENURE_ACTOR", "integration-test")
        yield settings, paths["churn"]


# The shipped defaults are measured on the 5000-customer, 36-month demo data (see
# configs/promote.yaml). This dataset is smaller: its test window has groups of 150-500 rows with
# 5-25 churners, fewer distinct ones (a customer churning in the window is positive at up to three
# snapshots; the gates count distinct customers), so ask for 8 distinct customers of each class, and
# with 6 training months a one-trial model may lean on counters that grow with calendar time
# (loyalty points, renewals so far) and so drift by construction: leave them out of the PSI gate.
SMALL_DATA_GATES = {"min_group_class_count": 8,
                    "psi_exclude": ["snapshot_month", "loyalty_points", "renewals_total"]}


def _gates_file(settings: Settings) -> Path:
    path = settings.home / "gates.yaml"
    path.write_text(json.dumps(SMALL_DATA_GATES))  # JSON is YAML
    return path


def _train_cfg(**split: object) -> TrainConfig:
    cfg = load_train_config(trials=1)
    return cfg.model_copy(update={
        "lightgbm": cfg.lightgbm.model_copy(update={"n_estimators": 300}),
        "evaluation": cfg.evaluation.model_copy(update={"shap_rows": 100}),
        "split": cfg.split.model_copy(update=split),
    })


def _client(settings: Settings):  # mlflow type
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def test_champion_challenger_refusal_and_forced_promotion(workspace: tuple[Settings, Path]) -> None:
    from training.train import train_task

    settings, fs_path = workspace
    cfg = load_promote_config(_gates_file(settings))
    assert cfg.min_group_class_count == 8 and cfg.min_auc == load_promote_config().min_auc
    client = _client(settings)

    # 1. the first model passes the absolute gates and becomes champion
    good = train_task("churn", fs_path, _train_cfg(), settings)
    first = promote("churn", settings, cfg)
    assert first.promoted and not first.forced and first.status == PROMOTED, first.failed_gates
    assert first.champion_version is None and first.challenger_version == good.version
    gates = {g.name: g for g in first.gates}
    assert gates["min_auc"].value == pytest.approx(good.test_metrics["roc_auc"], abs=1e-9)
    assert gates["max_ece"].value == pytest.approx(good.test_metrics["ece"], abs=1e-9)
    assert gates["auc_gap[city_tier]"].value is not None  # judged on real groups
    assert str(client.get_model_version_by_alias("churn", "champion").version) == good.version
    tags = client.get_model_version("churn", good.version).tags
    assert tags[TAG_STATUS] == PROMOTED and tags[TAG_BY] == "integration-test" and tags[TAG_AT]
    summary = json.loads(tags[TAG_RECORD])
    assert summary["status"] == PROMOTED and summary["gates"]["min_auc"][0] == 1
    record = json.loads(Path(client.download_artifacts(good.run_id, summary["artifact"],
                                                       str(settings.home / "dl"))).read_text())
    assert record["challenger_version"] == good.version and record["config"]["min_auc"] == cfg.min_auc
    assert record["metrics"]["rows"] == good.split["rows"]["test"]

    # 2. a weak challenger is refused; the champion is untouched and the refusal recorded
    weak_spec = load_spec("churn").model_copy(update={"features": ("region", "acquisition_channel")})
    weak = train_task(weak_spec, fs_path, _train_cfg(), settings)
    assert str(client.get_model_version_by_alias("churn", "challenger").version) == weak.version
    result = CliRunner().invoke(app, ["promote", "--task", "churn", "--config", str(_gates_file(settings))])
    assert result.exit_code == EXIT_REFUSED, result.output
    line = json.loads(result.output.strip().splitlines()[-1])
    assert line == {"model_name": "churn", "version": weak.version, "promoted": False, "forced": False,
                    "status": REFUSED, "reason": line["reason"]}
    assert "min_auc" in line["reason"] and "auc_vs_champion" in line["reason"]
    assert "FAIL" in result.output
    assert str(client.get_model_version_by_alias("churn", "champion").version) == good.version
    tags = client.get_model_version("churn", weak.version).tags
    assert tags[TAG_STATUS] == REFUSED and "min_auc" in tags[TAG_REASON]
    assert json.loads(tags[TAG_RECORD])["champion"] == good.version

    # 3. --force needs a reason (API and CLI); nothing changes
    with pytest.raises(PromotionError, match="--reason"):
        promote("churn", settings, cfg, force=True)
    result = CliRunner().invoke(app, ["promote", "--task", "churn", "--force"])
    assert result.exit_code == 2 and "--reason" in result.output
    assert str(client.get_model_version_by_alias("churn", "champion").version) == good.version

    # 4. --force --reason promotes despite the failed gates, recorded as forced
    forced = promote("churn", settings, cfg, force=True, reason="pilot of a two-feature model, ticket RISK-42",
                     actor="head-of-risk")
    assert forced.promoted and forced.forced and forced.status == FORCED and forced.failed_gates
    assert str(client.get_model_version_by_alias("churn", "champion").version) == weak.version
    tags = client.get_model_version("churn", weak.version).tags
    assert tags[TAG_STATUS] == FORCED and tags[TAG_BY] == "head-of-risk"
    assert tags[TAG_REASON] == "pilot of a two-feature model, ticket RISK-42"
    assert client.get_model_version("churn", good.version).tags[TAG_SUPERSEDED_BY] == weak.version

    # 5. the history holds every decision, oldest first, with its gates
    history = promotion_history("churn", settings)
    assert [(h["challenger_version"], h["status"]) for h in history] == [
        (good.version, PROMOTED), (weak.version, REFUSED), (weak.version, FORCED)]
    assert history[2]["champion_version"] == good.version and history[2]["actor"] == "head-of-risk"
    assert all(h["source"] == "artifact" and h["gates"] for h in history)

    # 6. the champion cannot be promoted again
    with pytest.raises(PromotionError, match="already the champion"):
        promote("churn", settings, cfg)


def test_random_split_uses_the_logged_test_rows_and_checks_the_feature_set(
        workspace: tuple[Settings, Path]) -> None:
    from training.train import train_task

    settings, fs_path = workspace
    trained = train_task("churn", fs_path, _train_cfg(kind="random"), settings, model_name="churn_random")
    assert trained.split["kind"] == "random"
    client = _client(settings)

    # a feature set that changed since training cannot reproduce the test rows
    client.set_model_version_tag("churn_random", trained.version, "tenure.featureset_hash", "0" * 64)
    with pytest.raises(PromotionError, match="changed since"):
        promote("churn_random", settings, load_promote_config(_gates_file(settings)))
    assert promotion_history("churn_random", settings) == []

    import features.featureset as fsmod

    client.set_model_version_tag("churn_random", trained.version, "tenure.featureset_hash",
                                 fsmod.read_metadata(fs_path)["content_hash"])
    decision = promote("churn_random", settings, load_promote_config(_gates_file(settings)))
    assert decision.metrics["rows"] == trained.split["rows"]["test"]
    assert decision.metrics["window"]["kind"] == "random"
    assert decision.promoted, decision.failed_gates


def test_bad_promote_config_is_a_clear_error(workspace: tuple[Settings, Path], tmp_path: Path) -> None:
    bad = tmp_path / "gates.yaml"
    bad.write_text("max_auc_drop: -0.01\nmin_aucc: 0.7\n")
    result = CliRunner().invoke(app, ["promote", "--task", "churn", "--config", str(bad)])
    assert result.exit_code == 2
    assert str(bad) in result.output and "max_auc_drop" in result.output and "min_aucc" in result.output
