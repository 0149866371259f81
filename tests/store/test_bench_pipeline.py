"""make bench-pipeline runs end to end: terminals sign on, every timed sale is approved, a figure
is printed (a benchmark, not a speed test: no figure is asserted)."""

from __future__ import annotations

import re

import pytest

from posgate.bench import pipeline


def test_pipeline_bench_runs_and_prints_the_figure(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path) -> None:  # fmt: skip
    monkeypatch.setenv("POSGATE_MASTER_KEY_FILE", str(tmp_path / "master.key"))  # restored afterwards: main() sets it
    assert pipeline.main(["--terminals", "3", "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"batches of 3: best [\d.]+ us/sale, median [\d.]+ us/sale over 2 batches", out), out
