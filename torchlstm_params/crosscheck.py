"""Expected tensors (from the formulas) against the tensors really registered.

Only metadata is read (names, shapes): never tensor data, so meta-device and
lazily-initialised models are checked as cheaply as real ones. A parametrized
weight is checked at the shape its parametrization computes; where torch does
not guarantee that shape (``unsafe=True``, several originals) the parametrization
is run on a copy of itself whose tensors are meta twins, never on the model.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .detect import Detected
from .errors import InvalidSettingsError
from .formulas import Formula
from .names import parse_tensor_name
from .packed import PackedStorage, packed_tensors
from .recurrence import Recurrence
from .registry import TensorMap

__all__ = ["Check", "Explanation", "TensorFinding", "crosscheck", "format_shape"]

Shape = tuple[int, ...]


def format_shape(shape: Shape | None) -> str:
    return "absent" if shape is None else "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


@dataclass(frozen=True, slots=True)
class TensorFinding:
    """One way in which a registered tensor differs from the formula's.

    ``problem`` is ``"missing"``, ``"unexpected"``, ``"wrong_shape"``, ``"uninitialized"`` or
    ``"tied"`` (the tensor is the same object as the one registered as ``same_as``: the formula
    counts two tensors where the module holds one).

    Attributes:
        tensor: the tensor's name on the module (``weight_hh_l1``).
        problem: ``missing``, ``unexpected``, ``wrong_shape``, ``uninitialized`` or ``tied``.
        expected_shape: the formula's shape (None for an unexpected tensor).
        found_shape: the registered shape (None when missing or uninitialized).
        same_as: for ``tied``, the name the tensor was first registered under (None otherwise).
    """

    tensor: str
    problem: str
    expected_shape: Shape | None
    found_shape: Shape | None
    same_as: str | None = None  # "tied": the name the tensor was first registered under

    def message(self) -> str:
        if self.problem == "tied":
            return (
                f"{self.tensor}: the same tensor as {self.same_as} (tied inside one recurrent module); "
                f"the formula counts both, the module holds {_numel(self.found_shape):,} elements once"
            )
        if self.problem == "missing":
            return f"{self.tensor}: missing, expected shape {format_shape(self.expected_shape)}"
        if self.problem == "unexpected":
            return f"{self.tensor}: unexpected tensor of shape {format_shape(self.found_shape)}, not in the formula"
        if self.problem == "uninitialized":
            return f"{self.tensor}: uninitialized (lazy), expected shape {format_shape(self.expected_shape)}"
        return (
            f"{self.tensor}: expected shape {format_shape(self.expected_shape)}, found {format_shape(self.found_shape)}"
        )


@dataclass(frozen=True, slots=True)
class Explanation:
    """A difference between registered tensors and the formula that is understood, not broken.

    ``kind``: ``parametrized`` (torch.nn.utils.parametrize), ``weight_norm`` (legacy
    ``torch.nn.utils.weight_norm``), ``stand_in`` (a Parameter holding a weight that is
    recomputed into a plain tensor, weight-drop style), ``extra`` (parameters beyond the
    recurrent ones), ``shared`` (a recurrent tensor registered again under a name of its own,
    counted once), ``not_parameters`` (matched tensors that are not parameters of the module's
    subtree) or ``packed`` (dynamic-quantized weights). ``delta``: elements held beyond the
    formula's for this tensor (negative when fewer).

    Attributes:
        tensor: the formula tensor it concerns (``(all)``, ``(submodules)``, ``(not parameters)`` for
            module-wide ones).
        kind: ``parametrized``, ``weight_norm``, ``stand_in``, ``extra``, ``shared``, ``not_parameters``
            or ``packed`` (above).
        message: what was found, in one sentence.
        delta: elements held beyond the formula's for this tensor (negative when fewer).
    """

    tensor: str
    kind: str
    message: str
    delta: int


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one module's cross-check."""

    findings: tuple[TensorFinding, ...]
    explanations: tuple[Explanation, ...]
    accounted: int  # elements of the registered tensors the check matched to the formula or explained
    packed: PackedStorage | None = None


def _shape(tensor: torch.Tensor) -> Shape | None:
    try:
        return tuple(tensor.shape)
    except RuntimeError:  # UninitializedParameter
        return None


def _get(params: Mapping[str, torch.Tensor | None], name: str) -> torch.Tensor | None:
    """``params.get(name)``, also for a scripted module's OrderedDictWrapper (which has no get)."""
    return params[name] if name in params else None  # noqa: SIM401


def _numel(shape: Shape | None) -> int:
    if shape is None:
        return 0
    n = 1
    for d in shape:
        n *= d
    return n


def _qualname(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _parametrized(module: nn.Module, name: str) -> tuple[Shape | None, Explanation, int] | None:
    """torch.nn.utils.parametrize: the originals that stand in for ``name``, and the shape it is computed at.

    The shape is None when it cannot be known without running the parametrization on the weights.
    """
    container = module._modules.get("parametrizations")
    if container is None or name not in container._modules:
        return None
    plist = container._modules[name]
    assert plist is not None
    shapes = [(n, _shape(p)) for n, p in plist._parameters.items() if p is not None]
    known = [(n, sh) for n, sh in shapes if sh is not None]
    if not known or len(known) != len(shapes):
        return None
    held = sum(_numel(sh) for _, sh in known)
    by = ", ".join(_qualname(m) for m in plist.children())
    # A state dict's stand-in holds the originals but not the parametrization, which is code.
    how = f"by {by}" if by else "through torch.nn.utils.parametrize (by what, the checkpoint does not record)"
    stand_ins = ", ".join(f"parametrizations.{name}.{n} {format_shape(sh)}" for n, sh in known)
    if not by:  # no parametrization to work the shape out from: the original that carries the weight's shape
        logical: Shape | str = max((sh for _, sh in known), key=_numel)
    else:
        logical = _logical_shape(plist, dict(known))
    if isinstance(logical, str):
        message = (
            f"{name} is reparametrized {how}; it is computed from {stand_ins} ({held:,} elements held); "
            f"its shape is not checked: working it out would run it on the weights ({logical})"
        )
        return None, Explanation(name, "parametrized", message, 0), held
    delta = held - _numel(logical)
    inferred = "" if by else " (inferred: the largest original's)"
    message = (
        f"{name} is reparametrized {how}; it is computed from {stand_ins} "
        f"as shape {format_shape(logical)}{inferred} ({delta:+,} elements)"
    )
    return logical, Explanation(name, "parametrized", message, delta), held


def _logical_shape(plist: nn.Module, originals: Mapping[str, Shape]) -> Shape | str:
    """The shape a parametrization computes, without running it on the model's tensors (a reason when unknown).

    torch checks at registration that a parametrization registered without ``unsafe=True`` on one
    original keeps its shape, so that original's shape is the answer, and nothing is run (spectral_norm's
    power iteration, say, would update its buffers). Otherwise (``unsafe=True``, which torch's own
    weight_norm and orthogonal use, or several originals) the parametrization is run on a copy of
    itself whose tensors are all on the meta device: shapes only, no data read, nothing of the model
    changed. One whose shape depends on the values (``.item()``) cannot run there: then the reason.
    """
    if getattr(plist, "is_tensor", False) and not getattr(plist, "unsafe", True) and "original" in originals:
        return originals["original"]
    tensors: dict[int, Any] = {}
    for sub in plist.modules():
        for value in (*sub._parameters.values(), *sub._buffers.values(), *vars(sub).values()):
            if isinstance(value, torch.Tensor) and id(value) not in tensors:
                on_meta = torch.empty_like(value, device="meta")
                tensors[id(value)] = (
                    nn.Parameter(on_meta, requires_grad=value.requires_grad)
                    if isinstance(value, nn.Parameter)
                    else on_meta
                )
    try:
        with torch.no_grad():
            out = copy.deepcopy(plist, tensors)()  # the memo maps every tensor to its meta twin: no data copied
    except Exception as exc:  # the user's code, on meta tensors: anything may fail  # noqa: BLE001
        return f"it does not run on meta tensors: {type(exc).__name__}: {str(exc)[:120]}"
    if not isinstance(out, torch.Tensor):
        return f"it returns a {type(out).__name__}, not a tensor"
    return tuple(out.shape)


def _legacy_weight_norm(params: Mapping[str, torch.Tensor | None], name: str) -> tuple[Shape, Explanation, int] | None:
    g, v = _get(params, f"{name}_g"), _get(params, f"{name}_v")
    if g is None or v is None:
        return None
    g_shape, v_shape = _shape(g), _shape(v)
    if g_shape is None or v_shape is None:
        return None
    delta = _numel(g_shape)
    message = (
        f"{name} is computed by legacy torch.nn.utils.weight_norm from {name}_g {format_shape(g_shape)} "
        f"and {name}_v {format_shape(v_shape)} ({delta:+,} elements)"
    )
    return v_shape, Explanation(name, "weight_norm", message, delta), _numel(g_shape) + _numel(v_shape)


def _stand_in(
    module: nn.Module, params: Mapping[str, torch.Tensor | None], name: str, expected: Shape
) -> tuple[str, Explanation] | None:
    """Weight-drop style: ``name`` is a plain tensor recomputed from a Parameter such as ``name_raw``."""
    plain = module.__dict__.get(name)
    if not isinstance(plain, torch.Tensor) or isinstance(plain, nn.Parameter):
        return None
    for other, tensor in params.items():
        if other.startswith(f"{name}_") and tensor is not None and _shape(tensor) == expected:
            message = f"{name} is not a Parameter; {other} has its shape {format_shape(expected)}"
            return other, Explanation(name, "stand_in", message, 0)
    return None


def _compare(formula: Formula, logical: Mapping[str, Shape | None]) -> list[TensorFinding]:
    findings = []
    for spec in formula.expected:
        if spec.name not in logical:
            findings.append(TensorFinding(spec.name, "missing", spec.shape, None))
            continue
        shape = logical[spec.name]
        if shape is None:
            findings.append(TensorFinding(spec.name, "uninitialized", spec.shape, None))
        elif shape != spec.shape:
            findings.append(TensorFinding(spec.name, "wrong_shape", spec.shape, shape))
    return findings


def _packed_check(formula: Formula, module: nn.Module) -> Check:
    shapes, storage = packed_tensors(module, formula.spec.directions)
    findings = _compare(formula, dict(shapes))
    findings += [TensorFinding(n, "unexpected", None, sh) for n, sh in shapes.items() if n not in formula.names]
    kinds = ", ".join(f"{dt} {b:,} B" for dt, _, b in storage.dtypes)
    message = (
        f"weights are packed by dynamic quantization, so parameters() yields nothing; "
        f"packed storage {storage.bytes:,} B ({kinds})"
    )
    return Check(tuple(findings), (Explanation("(all)", "packed", message, -formula.params),), 0, storage)


def _mapped_check(formula: Formula, mapped: Mapping[str, torch.Tensor | None]) -> Check:
    logical = {n: _shape(t) for n, t in mapped.items() if t is not None}
    findings = _compare(formula, logical)
    findings += [TensorFinding(n, "unexpected", None, sh) for n, sh in logical.items() if n not in formula.names]
    first: dict[int, str] = {}  # id(tensor) -> the first name mapped to it
    accounted = 0
    for name, tensor in mapped.items():
        if tensor is None:
            continue
        earlier = first.setdefault(id(tensor), name)
        if earlier != name:
            shape = logical[name]
            findings.append(TensorFinding(name, "tied", _expected_shape(formula, name), shape, same_as=earlier))
        else:
            accounted += _numel(logical[name])
    return Check(tuple(findings), (), accounted)


def _expected_shape(formula: Formula, name: str) -> Shape | None:
    return next((t.shape for t in formula.expected if t.name == name), None)


def _mapped(tensors: TensorMap, module: nn.Module, path: str) -> dict[str, torch.Tensor | None]:
    """Call a registered class's tensors function, naming the module, the class and the callback when it misbehaves."""
    cls = type(module)
    callback = f"{path or '(root)'} ({cls.__name__}): the tensors function registered for {_qualname(module)}"
    try:
        mapped = tensors(module)
    except Exception as exc:
        raise InvalidSettingsError(f"{callback} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(mapped, Mapping):
        raise InvalidSettingsError(f"{callback} should return a mapping of name -> tensor, got {type(mapped).__name__}")
    try:  # a user's mapping: reading it may fail too
        items = dict(mapped)
    except Exception as exc:
        raise InvalidSettingsError(f"{callback} returned a mapping that cannot be read: {exc!r}") from exc
    names = sorted(repr(n) for n in items if not isinstance(n, str))
    if names:
        raise InvalidSettingsError(f"{callback} should map tensor names (str) to tensors, got keys {', '.join(names)}")
    bad = sorted(n for n, t in items.items() if t is not None and not isinstance(t, torch.Tensor))
    if bad:
        raise InvalidSettingsError(f"{callback} mapped {bad} to something that is not a tensor")
    return items


def _described_check(formula: Formula, module: nn.Module) -> Check:
    """A described recurrence names its tensors relative to the module: every parameter below it is compared."""
    return _mapped_check(formula, dict(module.named_parameters()))


def crosscheck(formula: Formula, module: nn.Module, detected: Detected, path: str = "") -> Check:
    """Compare the formula's tensors with what ``module`` really holds, explaining known variants.

    ``path`` (the module's) only serves error messages.
    """
    if detected.packed:
        return _packed_check(formula, module)
    if detected.tensors is not None:
        return _mapped_check(formula, _mapped(detected.tensors, module, path))
    if isinstance(formula.spec, Recurrence):
        return _described_check(formula, module)
    params = module._parameters
    logical: dict[str, Shape | None] = {}
    explanations: list[Explanation] = []
    ties: list[TensorFinding] = []
    consumed: set[str] = set()
    first: dict[int, str] = {}  # id(tensor) -> the first name it is registered under: each tensor counts once
    accounted = 0
    for spec in formula.expected:
        tensor = _get(params, spec.name)
        if tensor is not None:
            logical[spec.name] = _shape(tensor)
            consumed.add(spec.name)
            earlier = first.setdefault(id(tensor), spec.name)
            if earlier != spec.name:
                ties.append(TensorFinding(spec.name, "tied", spec.shape, logical[spec.name], same_as=earlier))
            else:
                accounted += _numel(logical[spec.name])
            continue
        for found in (_parametrized(module, spec.name), _legacy_weight_norm(params, spec.name)):
            if found is not None:
                shape, explanation, held = found
                logical[spec.name] = spec.shape if shape is None else shape  # None: not checked, and said so
                explanations.append(explanation)
                accounted += held
                consumed.update((f"{spec.name}_g", f"{spec.name}_v"))
                break
        else:
            stand_in = _stand_in(module, params, spec.name, spec.shape)
            if stand_in is not None:
                other, explanation = stand_in
                logical[spec.name] = spec.shape
                explanations.append(explanation)
                consumed.add(other)
                accounted += spec.numel
    findings = _compare(formula, logical) + ties
    for name, tensor in params.items():
        if tensor is None or name in consumed:
            continue
        shape = _shape(tensor)
        if shape is None:
            findings.append(TensorFinding(name, "uninitialized", None, None))
            continue
        recurrent_name = parse_tensor_name(name) is not None  # named like torch's recurrent tensors
        earlier = first.setdefault(id(tensor), name)
        if earlier != name:  # a second name for a tensor already counted
            if recurrent_name:
                findings.append(TensorFinding(name, "tied", None, shape, same_as=earlier))
            else:
                message = f"{name} is another name for {earlier}; counted once"
                explanations.append(Explanation(name, "shared", message, 0))
            continue
        accounted += _numel(shape)
        if recurrent_name:  # anything else is an extra
            findings.append(TensorFinding(name, "unexpected", None, shape))
        else:
            message = (
                f"extra parameter {name} {format_shape(shape)} is not part of the recurrent formula; counted in totals"
            )
            explanations.append(Explanation(name, "extra", message, _numel(shape)))
    return Check(tuple(findings), tuple(explanations), accounted)
