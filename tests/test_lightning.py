"""The Lightning callback, with the real lightning package: one fit that passes, one stopped by the check."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

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


def test_fit_runs_when_the_check_passes(tmp_path):
    model = Tagger()
    callback = SanityCheckCallback(expect_params=tagger_params(8), expect={"rnn": {"hidden_size": 8}})
    trainer(tmp_path, callback).fit(model)
    assert model.steps == 2
    assert callback.report is not None and callback.report.total_params == tagger_params(8)
    assert callback.report.check is not None and callback.report.check.passed


def test_counts_land_in_the_trainers_csv_logger(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    model = Tagger()
    logger = CSVLogger(tmp_path, name="run", version=0)
    pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        callbacks=[SanityCheckCallback()],
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    ).fit(model)
    run = tmp_path / "run" / "version_0"
    with (run / "metrics.csv").open() as fh:
        rows = [row for row in csv.DictReader(fh) if row.get("torchlstm_params/total_params")]
    assert len(rows) == 1
    assert float(rows[0]["torchlstm_params/total_params"]) == tagger_params(8)
    assert float(rows[0]["torchlstm_params/trainable_params"]) == tagger_params(8)
    assert float(rows[0]["torchlstm_params/recurrent_modules"]) == 1
    assert float(rows[0]["torchlstm_params/check_passed"]) == 1
    hparams = (run / "hparams.yaml").read_text()
    assert f"torchlstm_params/total_params: {tagger_params(8)}\n" in hparams


_DEFAULT_FIT = textwrap.dedent(
    """
    import sys, warnings
    warnings.simplefilter("ignore")
    import lightning.pytorch as pl
    from tests.helpers import lightning_tagger
    from torchlstm_params.integrations.lightning import SanityCheckCallback

    for table in (False, True):
        print(f"--- table={table}", file=sys.stderr, flush=True)
        trainer = pl.Trainer(max_epochs=1, callbacks=[SanityCheckCallback(table=table)], default_root_dir=sys.argv[1],
                             enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
        trainer.fit(lightning_tagger())
    """
)


def test_a_default_fit_shows_one_line_and_the_table_only_when_asked(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", _DEFAULT_FIT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parent.parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    shown = done.stdout + done.stderr
    plain, tabled = shown.split("--- table=True")
    line = (
        f"torchlstm_params: Tagger: {tagger_params(8):,} parameters ({tagger_params(8):,} trainable), "
        "1 recurrent module(s) (rnn: LSTM); sanity check passed"
    )
    assert plain.count(line) == 1 and "Total params:" not in plain
    assert tabled.count(line) == 1 and f"Total params: {tagger_params(8):,}" in tabled


def test_failed_check_stops_fit_before_the_first_step(tmp_path):
    model = Tagger(hidden=6)
    callback = SanityCheckCallback(expect={"rnn": {"hidden_size": 8}})
    with pytest.raises(CheckFailedError, match=r"\[SETTING_MISMATCH\] Tagger.rnn: hidden_size expected 8, found 6"):
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
    import logging

    model = lightning_tagger(count_walks=True)
    callback = RecordsWalks(table=True, expect_params=tagger_params(8), expect={"rnn": {"hidden_size": 8}})
    shown = logging.getLogger("lightning.pytorch")  # Lightning's rank-zero printing: the table is drawn too
    shown.addHandler(caplog.handler)
    try:
        trainer(tmp_path, callback).fit(model)
    finally:
        shown.removeHandler(caplog.handler)
    assert callback.walks == ["walk.py:walk"]
    assert model.steps == 2 and callback.report is not None
    assert any("Total params: " + f"{tagger_params(8):,}" in r.getMessage() for r in caplog.records)
