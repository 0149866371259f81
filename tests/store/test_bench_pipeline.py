"""make bench-pipeline runs end to end: terminals sign on, every timed sale is approved, a figure
is printed (a benchmark, not a speed test: no figure is asserted)."""

from __future__ import annotations

import re

import pytest

from posgate.bench import pipeline


def test_pipeline_bench_runs_and_prints_the_figure(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path) -> None:  # fmt: skip
    monkeypatch.setenv(
        "POSGATE_MASTER_KEY_FILE", str(tmp_path / "master.key")
    )  # restored afterwards: main() sets it
    assert pipeline.main(["--terminals", "3", "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"batches of 3: best [\d.]+ us/sale, median [\d.]+ us/sale over 2 batches", out), out


@pytest.mark.postgres
def test_pipeline_bench_on_postgresql_reads_ahead(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path) -> None:  # fmt: skip
    from posgate.store.testing import pg_available

    if not pg_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    monkeypatch.setenv("POSGATE_MASTER_KEY_FILE", str(tmp_path / "master.key"))
    # every sale approved through the read-ahead and pipeline mode (BatchRunner's PostgreSQL path)
    assert pipeline.main(["--db", "postgresql", "--terminals", "3", "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"PostgreSQL \(read-ahead, pipeline mode\), batches of 3: best [\d.]+ us/sale", out), out


@pytest.mark.parametrize("kind", ["magstripe", "chip", "tap", "sm4"])
def test_pipeline_bench_runs_each_kind(kind: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                       tmp_path) -> None:  # fmt: skip
    """Every sale of the kind approved: the chip and tap sales' ARQCs verified by the issuer and
    its ARPCs accepted by the card (else the card declines and the bench stops), the SM4 sales
    on SM4 terminals (the demo's 40000001 and one added for the run)."""
    monkeypatch.setenv("POSGATE_MASTER_KEY_FILE", str(tmp_path / "master.key"))
    assert pipeline.main(["--terminals", "2", "--rounds", "1", "--kind", kind]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"{kind} sale, SQLite, batches of 2: best [\d.]+ us/sale", out), out


def test_pipeline_bench_all_kinds_alternate_with_ratios(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # fmt: skip
    monkeypatch.setenv("POSGATE_MASTER_KEY_FILE", str(tmp_path / "master.key"))
    assert pipeline.main(["--terminals", "1", "--rounds", "1", "--kind", "all", "--callgrind"]) == 0
    out = capsys.readouterr().out
    for kind in pipeline.KINDS:
        assert re.search(rf"{kind} sale, SQLite, batches of 1: .* CPU of this process median [\d.]+ us/sale "
                         rf"\([\d.]+x magstripe\)", out), out  # fmt: skip
