"""What every trainer shares: an interrupted fit is reported as an interrupt, and the run can resume."""

import pytest
import torch
from torch.utils.data import IterableDataset

from microsr.train.config import RunSettings
from microsr.train.fit import NetworkTraining, finish_step, fit


class _Settings(RunSettings):
    iterations: int = 5

    @property
    def total_iterations(self) -> int:
        return self.iterations


class _Interrupted(IterableDataset):
    """Yields three batches, then behaves as if the user pressed Ctrl-C."""

    def __iter__(self):
        for _ in range(3):
            yield torch.ones(2, 3)
        raise KeyboardInterrupt


class _Line(NetworkTraining):
    def __init__(self, config):
        super().__init__(config)
        self.network = torch.nn.Linear(3, 1)

    def configure_optimizers(self):
        return torch.optim.SGD(self.network.parameters(), lr=0.1)

    def training_step(self, batch, batch_index):
        loss = self.network(batch).pow(2).mean()
        self.iteration += 1
        finish_step(self, int(self.iteration), "train", loss, {"mse": loss})
        return loss

    def trained_network(self):
        return self.network

    def validation_metrics(self, batch):
        return {}


def test_ctrl_c_during_a_fit_is_an_interrupt_not_lightnings_exit_1(tmp_path):
    settings = _Settings(output_dir=tmp_path, checkpoint_every=1, accelerator="cpu")
    with pytest.raises(KeyboardInterrupt):
        fit(_Line(settings), lambda resumes: torch.utils.data.DataLoader(_Interrupted(), batch_size=None),
            settings, progress=False)
    assert (tmp_path / "losses.csv").read_text().splitlines()[1].startswith("1,train,")  # the step it made is kept
