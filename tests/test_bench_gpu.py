"""bench/gpu.sh, the script a lent GPU runs, works end to end: on a CPU with tiny networks (--tiny)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_script_runs_every_step_tiny_on_cpu(tmp_path):
    result = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh"), "--tiny", "--out", str(tmp_path)],
                            env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin", "MICROSR_THREADS": "2",
                                 "HOME": str(tmp_path)},
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "rows.json").read_text())
    assert report["device"] in ("cpu", "cuda") and report["inference"][0]["seconds"] > 0
    assert [row["run"] for row in report["budgeted"]] == ["srn_dots", "srn_lines", "sr_seed0", "denoise_seed0",
                                                          "sr_seed1", "denoise_seed1"]
    assert report["seeds"] == 2 and set(report["uncertainty"]["5"]) == {"DFCAN-SIM", "rDL SIM"}
    assert 0 <= report["training"][0]["data_share"] <= 1
    rows = (tmp_path / "rows.md").read_text()
    for heading in ("SFSRM inference", "Training throughput", "Paper-size models", "Dot pairs", "Line pairs",
                    "model uncertainty"):
        assert heading in rows
