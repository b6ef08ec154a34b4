"""Lightning: run the sanity check when ``Trainer.fit`` starts, before the first step.

    from torchlstm_params.integrations.lightning import SanityCheckCallback
    trainer = Trainer(callbacks=[SanityCheckCallback(expect={"encoder": {"hidden_size": 512}})])

A default fit shows one line, printed through Lightning's own rank-zero logging
(what prints "GPU available: ..."): total and trainable parameters, the recurrent
modules, and whether the check passed. The counts go to every logger the
Trainer has (``log_hyperparams`` and ``log_metrics``), so they land in CSV,
TensorBoard or W&B. ``table=True`` prints the full summary too.

Importing ``torchlstm_params`` never imports Lightning; only this module does.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info

from ..errors import CheckFailedError, InvalidSettingsError
from ..render import check_lines
from ..results import Report
from ..sanity import check_options, run_check
from ..summary import summarize_tree

__all__ = ["SanityCheckCallback"]

#: The prefix of every figure logged to the Trainer's loggers.
PREFIX = "torchlstm_params"


class SanityCheckCallback(pl.Callback):
    """Checks the LightningModule at ``on_fit_start``; a failed check stops the fit.

    ``options`` are :func:`torchlstm_params.check` options (``expect_params``,
    ``expect``, ``mode``, ``strict``, ...). ``table=True`` also prints the full
    summary. The report (with ``report.check``) is kept in ``self.report``.
    """

    def __init__(self, *, table: bool = False, **options: Any) -> None:
        super().__init__()
        if not isinstance(table, bool):
            raise InvalidSettingsError(f"SanityCheckCallback(): table must be True or False, got: {table!r:.80}")
        self.table = table
        self.options = check_options("SanityCheckCallback", **options)
        self.report: Report | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        name = type(pl_module).__name__
        summary = summarize_tree(pl_module, registry=self.options.registry)
        try:
            self.report = run_check(summary, self.options, root=name)
        except CheckFailedError as exc:
            self.report = exc.report
            self._announce(trainer, name, exc.report)
            raise
        self._announce(trainer, name, self.report)

    def _announce(self, trainer: pl.Trainer, name: str, report: Report) -> None:
        result = report.check
        assert result is not None  # run_check always attaches one
        recurrent = ", ".join(f"{e.name or '(root)'}: {e.spec.kind}" for e in report.recurrent) or "none"
        outcome = {"passed": "passed", "failed": "FAILED", "incomplete": "not complete"}[result.status]
        problems = f" ({len(result.errors)} errors, {len(result.warnings)} warnings)" if result.problems else ""
        rank_zero_info(
            f"torchlstm_params: {name}: {report.total_params:,} parameters ({report.trainable_params:,} trainable), "
            f"{len(report.recurrent)} recurrent module(s) ({recurrent}); sanity check {outcome}{problems}"
        )
        if self.table:
            rank_zero_info(f"{report}\n\n" + "\n".join(check_lines(result)))
        figures = {
            f"{PREFIX}/total_params": report.total_params,
            f"{PREFIX}/trainable_params": report.trainable_params,
            f"{PREFIX}/non_trainable_params": report.non_trainable_params,
            f"{PREFIX}/recurrent_modules": len(report.recurrent),
            f"{PREFIX}/check_passed": int(result.passed),
        }
        for logger in trainer.loggers:  # each logger's methods already run on rank zero only
            logger.log_hyperparams(figures)
            logger.log_metrics({key: float(value) for key, value in figures.items()}, step=trainer.global_step)
