"""The library's exceptions: one base class and a few precise subclasses.

Every message names what was looked at (a module path, a tensor, a field),
what was expected and what was found. This module imports nothing from its
package, so every other module can import it without forming a circle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CheckFailedError",
    "CheckpointError",
    "ConversionError",
    "ForeignFileError",
    "InvalidSettingsError",
    "NotAModuleError",
    "Problem",
    "SpecError",
    "TorchLstmParamsError",
]


class TorchLstmParamsError(Exception):
    """Base class of every error this library raises on purpose."""


class InvalidSettingsError(TorchLstmParamsError, ValueError):
    """Recurrent settings that no module can have (a size of 0, ``proj_size`` on a GRU, ...).

    Also a :class:`ValueError`, so ``except ValueError`` keeps working.
    """


class NotAModuleError(TorchLstmParamsError, TypeError):
    """``summarize`` was given something that is not an ``nn.Module``."""


class SpecError(TorchLstmParamsError, ValueError):
    """A command-line spec (layer expression, factory path) that cannot be turned into a model."""


class CheckpointError(TorchLstmParamsError):
    """A checkpoint file that cannot be read, or holds something other than weights."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a model: a stable code, where, what was expected and found, and how bad.

    Attributes:
        code: the stable code (a key of :data:`torchlstm_params.CODES`), to allow or match by name.
        path: the module's path (``""`` for the root or the whole model).
        message: what was expected and what was found.
        severity: ``"error"`` (the check fails) or ``"warning"`` (logged and listed; it fails only under
            ``strict=True``); every code's is in :data:`torchlstm_params.SEVERITIES`.
    """

    code: str
    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"[{self.code}] {self.path or '(root)'}: {self.message}"
        return where if self.severity == "error" else f"{self.severity} {where}"


class CheckFailedError(TorchLstmParamsError):
    """``check()`` found problems; ``problems`` lists every one, ``report`` is the full summary.

    ``report`` is the :class:`torchlstm_params.Report` the check looked at (typed ``Any``
    here so that this module imports nothing from its package).
    """

    def __init__(self, problems: Sequence[Problem], report: Any) -> None:
        self.problems = tuple(problems)
        self.report = report
        count = len(self.problems)
        lines = [f"sanity check failed: {count} problem{'s' if count != 1 else ''} found"]
        warnings = sum(p.severity == "warning" for p in self.problems)
        if warnings:
            lines[0] += f" ({warnings} of them warning{'s' if warnings != 1 else ''})"
        lines.extend(f"  {problem}" for problem in self.problems)
        super().__init__("\n".join(lines))

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(p.code for p in self.problems)


class ForeignFileError(TorchLstmParamsError):
    """A Keras (``.keras``, ``.h5``) or ONNX file that cannot be read, or that lacks what a report needs."""


class ConversionError(TorchLstmParamsError, ValueError):
    """A Keras layer that no PyTorch module computes (a ``reset_after=False`` GRU, a ``relu`` LSTM, ...)."""
