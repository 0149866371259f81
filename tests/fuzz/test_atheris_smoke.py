"""Run the atheris harness for a bounded number of inputs (when atheris is installed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def test_atheris_codec_harness_runs_clean(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    harness = Path(__file__).with_name("atheris_codec.py")
    out = subprocess.run([sys.executable, str(harness), "-runs=60000", "-seed=1"], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Done 60000 runs" in out.stderr
