"""The Lightning callback, with the real lightning package: one fit that passes, one stopped by the check."""

from __future__ import annotations

import subprocess
import sys

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from torchlstm_params import CheckFailedError
from torchlstm_params.integrations.lightning import SanityCheckCallback

# Lightning's own advice (worker counts, logging intervals) and its use of a torch API that torch 2.13
# deprecates are not what these tests are about.
pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning"),
]


class Tagger(pl.LightningModule):
    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.rnn = nn.LSTM(4, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 2)
        self.steps = 0

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        self.steps += 1
        x, y = batch
        out, _ = self.rnn(x)
        return nn.functional.cross_entropy(self.head(out[:, -1]), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
        data = TensorDataset(torch.randn(8, 5, 4), torch.randint(0, 2, (8,)))
        return DataLoader(data, batch_size=4)


def trainer(tmp_path, callback: SanityCheckCallback) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )


def tagger_params(hidden: int) -> int:
    return 4 * hidden * (4 + hidden) + 8 * hidden + hidden * 2 + 2  # by hand


def test_fit_runs_when_the_check_passes(tmp_path, caplog):
    model = Tagger()
    callback = SanityCheckCallback(expect_params=tagger_params(8), expect={"rnn": {"hidden_size": 8}})
    with caplog.at_level("INFO", logger="torchlstm_params"):
        trainer(tmp_path, callback).fit(model)
    assert model.steps == 2
    assert callback.report is not None and callback.report.total_params == tagger_params(8)
    assert any("Total params: " + f"{tagger_params(8):,}" in r.getMessage() for r in caplog.records)


def test_failed_check_stops_fit_before_the_first_step(tmp_path):
    model = Tagger(hidden=6)
    callback = SanityCheckCallback(expect={"rnn": {"hidden_size": 8}})
    with pytest.raises(CheckFailedError, match=r"\[SETTING_MISMATCH\] rnn: hidden_size expected 8, found 6"):
        trainer(tmp_path, callback).fit(model)
    assert model.steps == 0


def test_unknown_callback_option():
    with pytest.raises(TypeError, match=r"SanityCheckCallback\(\) got unknown options \['hidden'\]"):
        SanityCheckCallback(hidden=8)


def test_importing_the_package_does_not_import_lightning():
    code = (
        "import sys, torchlstm_params\n"
        "print(any(m.split('.')[0] in ('lightning', 'pytorch_lightning') for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "False"
