"""What every built-in third-party description shares: the class table entry, the checkpoint
anchor, the stand-in module for checkpoints, and reading settings off a module."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import InvalidSettingsError
from ..formulas import RNNSpec
from ..recurrence import Recurrence

__all__ = ["Anchor", "Described", "Shapes", "ThirdPartyClass", "setting", "shape_of"]

Shapes = Mapping[str, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class ThirdPartyClass:
    """A library class described by a built-in reader.

    ``module`` and ``qualname`` name where the library defines the class; the
    reader is only ever asked about a class that is that very object in
    ``sys.modules[module]`` (the library already imported by the user).
    """

    library: str  # the distribution, as pip names it
    module: str
    qualname: str
    read: Callable[[nn.Module], RNNSpec | Recurrence]

    @property
    def origin(self) -> str:
        return f"{self.module}.{self.qualname}"


@dataclass(frozen=True, slots=True)
class Anchor:
    """A tensor name that only this class registers, and how to rebuild its description from shapes.

    ``infer`` gets the shapes of every tensor under the anchor's module path, named
    relative to it, and returns the description (or None when they do not fit).
    """

    suffix: str
    origin: str
    infer: Callable[[Shapes], Recurrence | None]


class Described(nn.Module):
    """A checkpoint's stand-in for a described class: the checkpoint's tensors, and the description
    inferred from their names and shapes (``origin`` says which class it was inferred as)."""

    def __init__(self, recurrence: Recurrence, origin: str) -> None:
        super().__init__()
        self.recurrence = recurrence
        self.origin = origin


def setting(module: nn.Module, name: str, *, minimum: int = 1) -> int:
    """An integer setting stored on ``module`` (an int, an integral float, or a one-element tensor).

    Raises :class:`InvalidSettingsError` naming the attribute when it is anything else.
    """
    value = getattr(module, name, None)
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.is_meta:
            raise InvalidSettingsError(f"{name} is a tensor of shape {tuple(value.shape)} whose value cannot be read")
        value = value.item()
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSettingsError(f"{name} should be an int, got: {type(value).__name__} ({value!r})")
    if value < minimum:
        raise InvalidSettingsError(f"{name} must be >= {minimum}, got: {value}")
    return value


def shape_of(shapes: Shapes, name: str, dims: int) -> tuple[int, ...] | None:
    """The shape of ``name`` when it is there with ``dims`` dimensions, else None."""
    shape = shapes.get(name)
    return shape if shape is not None and len(shape) == dims else None
