"""The benchmarks still run (tiny sizes); their figures come from `make bench`, not from here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_benchmark_suite_runs_and_writes_its_results(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "latest.json").read_text())["figures"]
    assert {
        "sandbox_ms_per_script_task",
        "sandbox_pool_us_per_script",
        "e2e_sqlite_meetings_per_s",
        "e2e_sqlite_latency_ms_p99",
        "raw_spiff_instances_per_s_beside_e2e",  # engine_vs_raw's side, at one moment
        "engine_vs_raw",
    } <= set(figures)
    assert all(isinstance(v, float) for v in figures.values())
    assert "sandbox_ms_per_script_task" in result.stdout
    summary = (tmp_path / "latest.md").read_text()
    assert "| sandbox_ms_per_script_task |" in summary
    assert "## Against the targets" in summary and "| e2e_sqlite_meetings_per_s |" in summary
