"""Multi-GPU training that is tested: every training task under Lightning DDP (CPU, 2 processes, gloo)."""

import json
import subprocess
import sys
from itertools import islice
from pathlib import Path

import pytest
import torch

from microsr.train.streams import stream_slot, worker_indices


@pytest.mark.slow
def test_every_training_task_runs_under_ddp_and_its_ranks_end_with_identical_weights(tmp_path):
    script = Path(__file__).with_name("ddp_every_task.py")
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for run in ("sfsrm_sen", "sfsrm_srn", "rdl_sr", "rdl_denoise", "selfsup"):
        check = json.loads((tmp_path / run / "ddp.json").read_text())
        assert check == {"ranks": 2, "max_weight_difference": 0.0}, run
        assert torch.load(tmp_path / run / "model.pt", weights_only=True)["iterations"] == 2, run
        assert (tmp_path / run / "starts.txt").read_text().strip() == "1", run  # one start, not one per rank


def test_each_ddp_rank_draws_its_own_samples(monkeypatch):
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 1)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
    assert stream_slot() == (1, 2) and list(islice(worker_indices(), 3)) == [1, 3, 5]
