"""The Lightning callback, with the real lightning package: one fit that passes, one stopped by the check."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import lightning_tagger
from torchlstm_params import CheckFailedError, InvalidSettingsError

pytest.importorskip("lightning", reason="the lightning extra is not installed")
import lightning.pytorch as pl

from torchlstm_params.integrations.lightning import SanityCheckCallback

# Lightning's own advice (worker counts, logging intervals) and its use of a torch API that torch 2.13
# deprecates are not what these tests are about.
pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning"),
]


def Tagger(hidden: int = 8) -> pl.LightningModule:
    return lightning_tagger(hidden)


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
    with pytest.raises(InvalidSettingsError, match=r"SanityCheckCallback\(\) got unknown options 'hidden'"):
        SanityCheckCallback(hidden=8)


def test_importing_the_package_does_not_import_lightning():
    code = (
        "import sys, torchlstm_params\n"
        "print(any(m.split('.')[0] in ('lightning', 'pytorch_lightning') for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "False"


class RecordsWalks(SanityCheckCallback):
    """The real callback, with the model's walks recorded while its on_fit_start runs (and only then:
    Lightning itself walks the model for the optimizer, the device move and so on)."""

    walks: list[str] | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pl_module.record_walks()  # type: ignore[operator]
        try:
            super().on_fit_start(trainer, pl_module)
        finally:
            self.walks = list(pl_module.walks)  # type: ignore[arg-type]
            pl_module.stop_recording()  # type: ignore[operator]


def test_the_callback_walks_the_model_once(tmp_path, caplog):
    model = lightning_tagger(count_walks=True)
    callback = RecordsWalks(expect_params=tagger_params(8), expect={"rnn": {"hidden_size": 8}})
    with caplog.at_level("INFO", logger="torchlstm_params"):  # the logged summary table is drawn too
        trainer(tmp_path, callback).fit(model)
    assert callback.walks == ["walk.py:walk"]
    assert model.steps == 2 and callback.report is not None
    assert any("Total params: " + f"{tagger_params(8):,}" in r.getMessage() for r in caplog.records)
