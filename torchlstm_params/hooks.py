"""The one-shot sanity hook: ``check()`` on the first forward call, then gone.

Opt-in, and the only place this library registers anything on a model. The
hook removes itself in a ``finally`` on its first call, whether the check
passes or raises, so the steady-state forward path carries no hook at all.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.utils.hooks import RemovableHandle

from .check import check, validate_options
from .errors import NotAModuleError

__all__ = ["install_sanity_hook"]


def install_sanity_hook(model: nn.Module, **options: Any) -> RemovableHandle:
    """Run ``check(model, **options)`` when ``model`` is first called, then remove the hook.

    Returns the hook's :class:`~torch.utils.hooks.RemovableHandle`; it is also
    a context manager, so ``with install_sanity_hook(model): ...`` removes the
    hook on exit even if the model was never called. Options are validated
    now, not at the first forward call.

    >>> from torch import nn
    >>> import torch
    >>> rnn = nn.GRU(3, 4)
    >>> handle = install_sanity_hook(rnn, expect_params=3 * 4 * (3 + 4) + 2 * 3 * 4)
    >>> _ = rnn(torch.zeros(1, 3))
    >>> handle.id in rnn._forward_pre_hooks
    False
    """
    if not isinstance(model, nn.Module):
        raise NotAModuleError(f"install_sanity_hook() expects a torch.nn.Module, got {type(model).__name__}")
    # Fail on a typo in the options now, before any training code runs.
    validate_options(options, "install_sanity_hook")
    handle: RemovableHandle

    def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        try:
            check(module, **options)
        finally:
            handle.remove()

    handle = model.register_forward_pre_hook(hook)
    return handle
