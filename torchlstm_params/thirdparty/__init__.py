"""Built-in descriptions of the hand-written recurrent layers of libraries people use.

Each class is named by the module that defines it and read only when that module
is already in ``sys.modules`` (the user imported the library): nothing here imports
torchaudio, speechbrain, neuralforecast, pytorch-forecasting or torch-geometric-temporal,
and none of them is a dependency. See :data:`CLASSES` for the list and each
submodule for what the classes hold.

Checkpoints: :func:`infer_checkpoint` finds these classes in a state dict by a tensor
name only they register (their ``ANCHORS``) and rebuilds each one's description from
the shapes, the same description the live class gives.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from ..recurrence import Recurrence
from . import audio, forecast, graph, speech
from .base import Anchor, Described, ThirdPartyClass

__all__ = ["ANCHORS", "CLASSES", "Described", "InferredRecurrence", "ThirdPartyClass", "infer_checkpoint"]

#: Every built-in third-party class, by library.
CLASSES: tuple[ThirdPartyClass, ...] = audio.CLASSES + speech.CLASSES + forecast.CLASSES + graph.CLASSES
#: Tensor names that only one of these classes registers, for checkpoints.
ANCHORS: tuple[Anchor, ...] = audio.ANCHORS + speech.ANCHORS + forecast.ANCHORS + graph.ANCHORS


@dataclass(frozen=True, slots=True)
class InferredRecurrence:
    """A described class found in a checkpoint: where, as what, and its description."""

    path: str  # the module path in the checkpoint ("" for the root)
    origin: str  # the class it was inferred as
    recurrence: Recurrence


def infer_checkpoint(shapes: Mapping[str, tuple[int, ...]]) -> list[InferredRecurrence]:
    """Every described class whose anchor tensor is in ``shapes`` (name -> shape), outermost first.

    >>> found = infer_checkpoint({"dec.x2g.weight": (8, 3), "dec.x2g.bias": (8,), "dec.p2g.weight": (8, 2)})
    >>> [(f.path, f.recurrence.kind, f.recurrence.input_size, f.recurrence.hidden_size) for f in found]
    [('dec', '_CustomLSTM', 3, 2)]
    """
    found: dict[str, InferredRecurrence] = {}
    for name in shapes:
        for anchor in ANCHORS:
            if name == anchor.suffix:
                path = ""
            elif name.endswith("." + anchor.suffix):
                path = name[: -len(anchor.suffix) - 1]
            else:
                continue
            if path in found:
                continue
            start = f"{path}." if path else ""
            under = {n[len(start) :]: s for n, s in shapes.items() if n.startswith(start)}
            recurrence = anchor.infer(under)
            if recurrence is not None:
                note = f"inferred from tensor names and shapes as {anchor.origin}"
                note += f"; {recurrence.note}" if recurrence.note else ""
                found[path] = InferredRecurrence(path, anchor.origin, dataclasses.replace(recurrence, note=note))
    return sorted(found.values(), key=lambda f: (f.path.count("."), f.path) if f.path else (-1, ""))
