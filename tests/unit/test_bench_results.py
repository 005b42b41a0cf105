"""`benchmarks.results.write_results`: a rerun rewrites the table and keeps the notes below the marker."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.results import NOTES_MARKER, write_results


def test_a_rerun_rewrites_the_table_and_keeps_the_notes_below_the_marker(tmp_path: Path) -> None:
    write_results("b", {"description": "first", "value": 1}, "| a |\n|---|\n| 1 |", directory=tmp_path)
    md = tmp_path / "b.md"
    assert NOTES_MARKER not in md.read_text()
    md.write_text(md.read_text() + f"\n{NOTES_MARKER}\n\n## Before and after\n\nwritten by hand\n")
    write_results("b", {"description": "second", "value": 2}, "| a |\n|---|\n| 2 |", directory=tmp_path)
    text = md.read_text()
    assert "| 2 |" in text and "| 1 |" not in text and "second" in text
    assert text.count(NOTES_MARKER) == 1 and text.rstrip().endswith("written by hand")
    assert text.index("| 2 |") < text.index(NOTES_MARKER)
    assert json.loads((tmp_path / "b.json").read_text())["value"] == 2
