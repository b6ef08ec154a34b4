"""The library's exceptions: one base class and a few precise subclasses.

Every message names what was looked at (a module path, a tensor, a field),
what was expected and what was found.
"""

from __future__ import annotations

__all__ = [
    "InvalidSettingsError",
    "NotAModuleError",
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
