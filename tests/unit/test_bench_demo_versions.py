"""`benchmarks.bench_demo_versions`: reading `tenure train`'s result line, the CLI module of a
checkout, and the paired summary over datasets (with and without the demo's own seed 42)."""

from __future__ import annotations

import math

import pytest

from benchmarks.bench_demo_versions import cli_module, markdown, read_test_auc, summarise

ROWS = [{"data_seed": 42, "task": "t", "base": 0.82, "head": 0.81},
        {"data_seed": 1, "task": "t", "base": 0.78, "head": 0.80},
        {"data_seed": 2, "task": "t", "base": 0.80, "head": 0.81},
        {"data_seed": 3, "task": "t", "base": 0.79, "head": 0.785}]


def test_the_summary_pairs_each_dataset_and_leaves_out_42_on_request() -> None:
    s = summarise(ROWS, [42, 1, 2, 3], ["t"])["t"]
    diffs = [-0.01, 0.02, 0.01, -0.005]
    mean = sum(diffs) / 4
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 3)
    assert s["all"]["datasets"] == 4 and s["all"]["diff"] == pytest.approx(mean)
    assert s["all"]["se"] == pytest.approx(sd / 2)
    assert (s["all"]["head_better"], s["all"]["head_worse"]) == (2, 2)
    assert s["other_than_42"]["datasets"] == 3
    assert s["other_than_42"]["diff"] == pytest.approx(sum(diffs[1:]) / 3)
    assert s["other_than_42"]["base"] == pytest.approx((0.78 + 0.80 + 0.79) / 3)
    table = markdown(summarise(ROWS, [42, 1, 2, 3], ["t"]), ROWS, "b", "h")
    assert "| 42 | t | 0.8200 | 0.8100 | -0.0100 |" in table


def test_the_result_line_is_the_last_json_line_with_test_metrics() -> None:
    out = ('chose the tuned parameters\n{"task": "t", "test_metrics": {"roc_auc": 0.75}}\n'
           '{"task": "t", "test_metrics": {"roc_auc": 0.8123, "pr_auc": 0.3}}\n')
    assert read_test_auc(out) == pytest.approx(0.8123)
    with pytest.raises(ValueError, match="test_metrics"):
        read_test_auc("Traceback ...\n")


def test_the_cli_module_is_found_in_either_layout(tmp_path) -> None:
    assert cli_module(tmp_path) == "configs.cli"
    (tmp_path / "tenure").mkdir()
    (tmp_path / "tenure" / "cli.py").write_text("")
    assert cli_module(tmp_path) == "tenure.cli"
