"""Lightning: run the sanity check when ``Trainer.fit`` starts, before the first step.

    from torchlstm_params.integrations.lightning import SanityCheckCallback
    trainer = Trainer(callbacks=[SanityCheckCallback(expect={"encoder": {"hidden_size": 512}})])

Importing ``torchlstm_params`` never imports Lightning; only this module does.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning.pytorch as pl

from ..results import Report
from ..sanity import check_options, run_check
from ..summary import summarize_tree

__all__ = ["SanityCheckCallback"]

log = logging.getLogger("torchlstm_params")


class SanityCheckCallback(pl.Callback):
    """Checks the LightningModule at ``on_fit_start``; a failed check stops the fit.

    ``options`` are :func:`torchlstm_params.check` options (``expect_params``,
    ``expect``, ``mode``, ...). The summary table is logged at INFO on the
    ``torchlstm_params`` logger; the report is kept in ``self.report``.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = check_options("SanityCheckCallback", **options)
        self.report: Report | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.report = run_check(summarize_tree(pl_module, registry=self.options.registry), self.options)
        if trainer.is_global_zero:
            log.info("torchlstm_params summary of %s:\n%s", type(pl_module).__name__, self.report)
