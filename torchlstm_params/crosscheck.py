"""Expected tensors (from the formulas) against the tensors really registered.

Only metadata is read (names, shapes): never tensor data, so meta-device and
lazily-initialised models are checked as cheaply as real ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from .formulas import Formula

__all__ = ["Check", "TensorFinding", "crosscheck", "is_exact"]

Shape = tuple[int, ...]


def _fmt(shape: Shape | None) -> str:
    return "absent" if shape is None else "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


@dataclass(frozen=True, slots=True)
class TensorFinding:
    """One way in which a registered tensor differs from the formula's.

    ``problem`` is ``"missing"``, ``"unexpected"``, ``"wrong_shape"`` or ``"uninitialized"``.
    """

    tensor: str
    problem: str
    expected_shape: Shape | None
    found_shape: Shape | None

    def message(self) -> str:
        if self.problem == "missing":
            return f"{self.tensor}: missing, expected shape {_fmt(self.expected_shape)}"
        if self.problem == "unexpected":
            return f"{self.tensor}: unexpected tensor of shape {_fmt(self.found_shape)}, not in the formula"
        if self.problem == "uninitialized":
            return f"{self.tensor}: uninitialized (lazy), expected shape {_fmt(self.expected_shape)}"
        return f"{self.tensor}: expected shape {_fmt(self.expected_shape)}, found {_fmt(self.found_shape)}"


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one module's cross-check."""

    tensor_params: int
    findings: tuple[TensorFinding, ...]


def is_exact(formula: Formula, found: Mapping[str, torch.Tensor | None]) -> bool:
    """The common case, checked cheaply: exactly the formula's names, in order, with its shapes."""
    if tuple(found) != formula.names:
        return False
    try:
        return tuple([tensor.shape for tensor in found.values()]) == formula.shapes  # type: ignore[union-attr]
    except (AttributeError, RuntimeError):  # a None slot; an UninitializedParameter has no shape
        return False


def crosscheck(formula: Formula, found: Mapping[str, torch.Tensor | None]) -> Check:
    """Compare the formula's tensors with a module's ``_parameters`` (name -> tensor).

    ``tensor_params`` sums the elements of every initialised tensor found,
    expected or not, so it is what ``sum(p.numel())`` says for the module.
    """
    if is_exact(formula, found):
        return Check(formula.params, ())
    shapes: dict[str, Shape | None] = {}
    total = 0
    for name, tensor in found.items():
        if tensor is None:
            continue
        try:
            total += tensor.numel()
        except ValueError:  # UninitializedParameter
            shapes[name] = None
            continue
        shapes[name] = tuple(tensor.shape)
    findings: list[TensorFinding] = []
    for spec in formula.expected:
        if spec.name not in shapes:
            findings.append(TensorFinding(spec.name, "missing", spec.shape, None))
            continue
        shape = shapes.pop(spec.name)
        if shape is None:
            findings.append(TensorFinding(spec.name, "uninitialized", spec.shape, None))
        elif shape != spec.shape:
            findings.append(TensorFinding(spec.name, "wrong_shape", spec.shape, shape))
    for name, shape in shapes.items():
        if shape is None:
            findings.append(TensorFinding(name, "uninitialized", None, None))
        else:
            findings.append(TensorFinding(name, "unexpected", None, shape))
    return Check(total, tuple(findings))
