"""Pre-training sanity check: every problem found at once, each with a stable code.

``check(model, **expectations)`` returns the :class:`Report` when all is well
and otherwise raises one :class:`CheckFailedError` that lists every problem
(or, with ``mode="warn"``, logs them). ``find_problems`` is the same search,
returning the problems as data.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import torch
from torch import nn
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

from .errors import CheckFailedError, InvalidSettingsError
from .registry import Registry
from .report import RecurrentEntry, Report, summarize
from .walk import Tree, unique_parameters, walk

__all__ = ["CODES", "Problem", "check", "find_problems", "validate_options", "weights_in_one_chunk"]

log = logging.getLogger("torchlstm_params")

#: Every problem code, with what it means. Codes are stable: allow them by name.
CODES: Final[Mapping[str, str]] = {
    "RNN_SHAPE_MISMATCH": "a recurrent tensor's shape differs from its settings' formula",
    "RNN_TENSOR_MISSING": "a tensor the formula requires is not registered",
    "RNN_TENSOR_UNEXPECTED": "a recurrent module registers a tensor the formula does not have",
    "LAZY_UNINITIALIZED": "a lazy parameter has not been initialised (no dry-run forward yet)",
    "PARAMS_MISMATCH": "the total parameter count is not expect_params",
    "PARAMS_OVER_BUDGET": "the total parameter count is above max_params",
    "PARAMS_UNDER_BUDGET": "the total parameter count is below min_params",
    "TRAINABLE_MISMATCH": "the trainable parameter count is not expect_trainable",
    "MODULE_NOT_FOUND": "a path in expect= names no module",
    "MODULE_NOT_RECURRENT": "expect= asks recurrent settings of a module that is not recurrent",
    "SETTING_MISMATCH": "a module's setting is not the one expect= asks for",
    "RNN_FROZEN": "recurrent weights are frozen while the rest of the model trains",
    "RNN_MIXED_DTYPE": "one recurrent module holds tensors of several dtypes",
    "RNN_MIXED_DEVICE": "one recurrent module holds tensors on several devices",
    "MODEL_MULTI_DEVICE": "the model's parameters span several devices",
    "RNN_NOT_FLAT": "CUDA recurrent weights are not one contiguous chunk (call flatten_parameters())",
    "RNN_DROPOUT_NO_EFFECT": "dropout > 0 on a single-layer RNN does nothing",
    "NON_FINITE": "a parameter holds NaN or Inf values",
    "RNN_EXPLAINED_DIFFERENCE": "recurrent tensors differ from the formula in an explained way (only with strict=True)",
}

_FINDING_CODES: Final = {
    "wrong_shape": "RNN_SHAPE_MISMATCH",
    "missing": "RNN_TENSOR_MISSING",
    "unexpected": "RNN_TENSOR_UNEXPECTED",
    "uninitialized": "LAZY_UNINITIALIZED",
}
_RECURRENT_SETTINGS: Final = (
    "kind",
    "input_size",
    "hidden_size",
    "num_layers",
    "bidirectional",
    "proj_size",
    "bias",
    "dropout",
    "batch_first",
)
_ANY_MODULE_SETTINGS: Final = ("params", "trainable_params", "type")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a model: a stable code, where, and what was expected and found."""

    code: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"[{self.code}] {self.path or '(root)'}: {self.message}"


def _where(path: str) -> str:
    return path or "(root)"


def _count_problems(
    report: Report,
    expect_params: int | None,
    max_params: int | None,
    min_params: int | None,
    expect_trainable: int | None,
) -> list[Problem]:
    out = []
    total = report.total_params
    if expect_params is not None and total != expect_params:
        out.append(
            Problem(
                "PARAMS_MISMATCH",
                "",
                f"expected {expect_params:,} parameters, found {total:,} ({total - expect_params:+,})",
            )
        )
    if max_params is not None and total > max_params:
        out.append(Problem("PARAMS_OVER_BUDGET", "", f"expected at most {max_params:,} parameters, found {total:,}"))
    if min_params is not None and total < min_params:
        out.append(Problem("PARAMS_UNDER_BUDGET", "", f"expected at least {min_params:,} parameters, found {total:,}"))
    trainable = report.trainable_params
    if expect_trainable is not None and trainable != expect_trainable:
        out.append(
            Problem(
                "TRAINABLE_MISMATCH", "", f"expected {expect_trainable:,} trainable parameters, found {trainable:,}"
            )
        )
    if report.uninitialized:
        for name in report.uninitialized:
            module_path, _, tensor = name.rpartition(".")
            out.append(
                Problem(
                    "LAZY_UNINITIALIZED",
                    module_path,
                    f"{tensor} is uninitialized (lazy); run one forward pass to materialize it",
                )
            )
    return out


def _finding_problems(entry: RecurrentEntry, strict: bool) -> list[Problem]:
    out: list[Problem] = []
    if strict:
        out.extend(Problem("RNN_EXPLAINED_DIFFERENCE", entry.name, e.message) for e in entry.explanations)
    for finding in entry.findings:
        if finding.problem == "uninitialized":  # reported once, with every lazy tensor of the model
            continue
        out.append(Problem(_FINDING_CODES[finding.problem], entry.name, finding.message()))
    return out


def _expectation_problems(report: Report, expect: Mapping[str, Mapping[str, object]]) -> list[Problem]:
    rows = {row.name: row for row in report.rows}
    aliases = {a.path: a.same_as for a in report.aliases}
    recurrent = {e.name: e for e in report.recurrent}
    out = []
    for path, wanted in expect.items():
        if not isinstance(wanted, Mapping):
            raise InvalidSettingsError(f"expect[{path!r}] must be a mapping of setting -> value, got {wanted!r}")
        unknown = sorted(set(wanted) - set(_RECURRENT_SETTINGS) - set(_ANY_MODULE_SETTINGS))
        if unknown:
            known = ", ".join(_RECURRENT_SETTINGS + _ANY_MODULE_SETTINGS)
            raise InvalidSettingsError(f"expect[{path!r}] has unknown settings {unknown}; known: {known}")
        path = aliases.get(path, path)
        row = rows.get(path)
        if row is None:
            close = difflib.get_close_matches(path, list(rows), n=3, cutoff=0.5)
            hint = f"; closest: {', '.join(repr(c) for c in close)}" if close else ""
            out.append(Problem("MODULE_NOT_FOUND", path, f"no module at this path{hint}"))
            continue
        entry = recurrent.get(path)
        found: dict[str, object] = {"params": row.params, "trainable_params": row.trainable_params, "type": row.type}
        if entry is not None:
            found.update({key: getattr(entry, key) for key in _RECURRENT_SETTINGS})
        for key, value in wanted.items():
            if key not in found:
                message = f"{key}={value!r} asked of a {row.type}, which is not recurrent"
                out.append(Problem("MODULE_NOT_RECURRENT", path, message))
                break
            have = found[key]
            if key == "kind" and isinstance(value, str) and isinstance(have, str):
                matched = value.upper() in (have.upper(), have.upper().removesuffix("_TANH"))
            else:
                matched = have == value
            if not matched:
                out.append(Problem("SETTING_MISMATCH", path, f"{key} expected {value!r}, found {have!r}"))
    return out


def _allowed(path: str, names: Iterable[str], patterns: tuple[str, ...]) -> bool:
    candidates = [path, *(f"{path}.{n}" if path else n for n in names)]
    return any(fnmatch.fnmatchcase(c, pattern) for c in candidates for pattern in patterns)


def weights_in_one_chunk(weights: Sequence[torch.Tensor]) -> bool:
    """True when ``weights`` lie back to back, in order, in one storage (what cuDNN wants).

    Reads only storage addresses and sizes, never values.
    """
    if not weights:
        return True
    storage = weights[0].untyped_storage().data_ptr()
    position = weights[0].data_ptr()
    for w in weights:
        if w.untyped_storage().data_ptr() != storage or not w.is_contiguous() or w.data_ptr() != position:
            return False
        position += w.numel() * w.element_size()
    return True


def _module_problems(
    report: Report,
    model: nn.Module,
    allow_frozen: tuple[str, ...],
    check_finite: bool,
) -> list[Problem]:
    tree = walk(model)
    modules = dict(zip(tree.paths, tree.modules, strict=True))
    out: list[Problem] = []
    anything_trains = report.trainable_params > 0
    for entry in report.recurrent:
        module = modules[entry.name]
        tensors = [(n, p) for n, p in module._parameters.items() if p is not None and not _lazy(p)]
        frozen = [n for n, p in tensors if not p.requires_grad]
        if frozen and anything_trains and not _allowed(entry.name, frozen, allow_frozen):
            out.append(
                Problem(
                    "RNN_FROZEN",
                    entry.name,
                    f"{len(frozen)} of {len(tensors)} tensors have requires_grad=False ({', '.join(frozen)}) while "
                    f"{report.trainable_params:,} parameters train; pass allow_frozen=[{entry.name!r}] if intended",
                )
            )
        dtypes = sorted({str(p.dtype).removeprefix("torch.") for _, p in tensors})
        if len(dtypes) > 1:
            detail = ", ".join(f"{n}: {str(p.dtype).removeprefix('torch.')}" for n, p in tensors)
            message = f"expected one dtype, found {', '.join(dtypes)} ({detail})"
            out.append(Problem("RNN_MIXED_DTYPE", entry.name, message))
        devices = sorted({str(p.device) for _, p in tensors})
        if len(devices) > 1:
            detail = ", ".join(f"{n}: {p.device}" for n, p in tensors)
            out.append(
                Problem("RNN_MIXED_DEVICE", entry.name, f"expected one device, found {', '.join(devices)} ({detail})")
            )
        if isinstance(module, nn.RNNBase) and tensors and all(p.is_cuda for _, p in tensors) and len(dtypes) == 1:
            flat = [p for _, p in tensors]
            if not weights_in_one_chunk(flat):
                out.append(
                    Problem(
                        "RNN_NOT_FLAT",
                        entry.name,
                        "weights are not one contiguous chunk of memory, so every forward call re-copies them "
                        "and warns; call module.flatten_parameters() after moving or replacing weights",
                    )
                )
        if entry.dropout > 0 and entry.num_layers == 1 and isinstance(module, nn.RNNBase):
            out.append(
                Problem(
                    "RNN_DROPOUT_NO_EFFECT",
                    entry.name,
                    f"dropout={entry.dropout} has no effect with num_layers=1 (dropout only applies between layers)",
                )
            )
    out.extend(_device_problems(tree))
    if check_finite:
        out.extend(_finite_problems(tree))
    return out


def _lazy(p: torch.Tensor) -> bool:
    return isinstance(p, UninitializedParameter | UninitializedBuffer)


def _device_problems(tree: Tree) -> list[Problem]:
    where: dict[str, list[str]] = {}
    for path, name, p in unique_parameters(tree):
        if not _lazy(p):
            where.setdefault(str(p.device), []).append(f"{path}.{name}" if path else name)
    if len(where) <= 1:
        return []
    detail = "; ".join(
        f"{device}: {len(names)} tensors ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
        for device, names in sorted(where.items())
    )
    return [Problem("MODEL_MULTI_DEVICE", "", f"expected one device, found {len(where)}: {detail}")]


def _finite_problems(tree: Tree) -> list[Problem]:
    out = []
    with torch.no_grad():
        for path, name, p in unique_parameters(tree):
            if _lazy(p) or p.is_meta:
                continue
            # A DTensor is scanned through this rank's shard: no collective call, each rank its own part.
            values = p.to_local() if hasattr(p, "to_local") else p
            if not (values.is_floating_point() or values.is_complex()) or bool(torch.isfinite(values).all()):
                continue
            nan = int(torch.isnan(values).sum())
            inf = int(torch.isinf(values).sum())
            out.append(Problem("NON_FINITE", path, f"{name} holds {nan:,} NaN and {inf:,} Inf of {p.numel():,} values"))
    return out


def find_problems(
    model: nn.Module,
    *,
    expect_params: int | None = None,
    max_params: int | None = None,
    min_params: int | None = None,
    expect_trainable: int | None = None,
    expect: Mapping[str, Mapping[str, object]] | None = None,
    allow_frozen: Iterable[str] = (),
    allow: Iterable[str] = (),
    check_finite: bool = True,
    strict: bool = False,
    registry: Registry | None = None,
) -> tuple[Report, tuple[Problem, ...]]:
    """Summarize ``model`` and list every problem, minus the codes in ``allow``.

    Differences the summary explains (weight_norm, packed weights, extra
    parameters...) are problems only with ``strict=True``.
    """
    allowed = frozenset(allow)
    unknown = sorted(allowed - set(CODES))
    if unknown:
        raise InvalidSettingsError(f"allow= names unknown problem codes {unknown}; known: {', '.join(CODES)}")
    for name, value in (
        ("expect_params", expect_params),
        ("max_params", max_params),
        ("min_params", min_params),
        ("expect_trainable", expect_trainable),
    ):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InvalidSettingsError(f"{name} must be an int >= 0, got: {value!r}")
    report = summarize(model, registry=registry)
    problems = _count_problems(report, expect_params, max_params, min_params, expect_trainable)
    for entry in report.recurrent:
        problems.extend(_finding_problems(entry, strict))
    problems.extend(_expectation_problems(report, expect or {}))
    problems.extend(_module_problems(report, model, tuple(allow_frozen), check_finite))
    return report, tuple(p for p in problems if p.code not in allowed)


def check(
    model: nn.Module,
    *,
    mode: str = "raise",
    expect_params: int | None = None,
    max_params: int | None = None,
    min_params: int | None = None,
    expect_trainable: int | None = None,
    expect: Mapping[str, Mapping[str, object]] | None = None,
    allow_frozen: Iterable[str] = (),
    allow: Iterable[str] = (),
    check_finite: bool = True,
    strict: bool = False,
    registry: Registry | None = None,
) -> Report:
    """Fail loudly, before training, if the model is not what was meant.

    Returns the :class:`Report` when no problem is found. Otherwise
    ``mode="raise"`` (default) raises :class:`CheckFailedError` listing every
    problem; ``mode="warn"`` logs each one on the ``torchlstm_params`` logger
    and returns the report.

    >>> from torch import nn
    >>> check(nn.LSTM(3, 2), expect_params=56).total_params
    56
    """
    if mode not in ("raise", "warn"):
        raise InvalidSettingsError(f"mode must be 'raise' or 'warn', got: {mode!r}")
    report, problems = find_problems(
        model,
        expect_params=expect_params,
        max_params=max_params,
        min_params=min_params,
        expect_trainable=expect_trainable,
        expect=expect,
        allow_frozen=allow_frozen,
        allow=allow,
        check_finite=check_finite,
        strict=strict,
        registry=registry,
    )
    if problems:
        if mode == "raise":
            raise CheckFailedError(problems, report)
        for problem in problems:
            log.warning("%s", problem)
    return report


def validate_options(options: Mapping[str, object], caller: str) -> None:
    """Refuse options ``check`` does not take, naming them (before any training code runs)."""
    accepted = set(inspect.signature(check).parameters) - {"model"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise TypeError(f"{caller}() got unknown options {unknown}; accepted: {', '.join(sorted(accepted))}")
