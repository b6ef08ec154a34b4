"""Pre-training sanity check: every problem found at once, each with a stable code.

``check(model, **expectations)`` returns the :class:`Report` when all is well
and otherwise raises one :class:`CheckFailedError` that lists every problem
(or, with ``mode="warn"``, logs them). ``find_problems`` is the same search,
returning the problems as data. ``install_sanity_hook`` runs ``check`` on a
model's first forward call. All of them read the model through one
``summarize`` walk: the report and its tree.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import torch
from torch import nn
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter
from torch.utils.hooks import RemovableHandle

from .errors import CheckFailedError, InvalidSettingsError, NotAModuleError, Problem
from .formulas import SETTINGS
from .registry import Registry
from .results import RecurrentEntry, Report
from .summary import Summary, summarize_tree
from .walk import Tree, unique_parameters

__all__ = ["CODES", "Problem", "check", "find_problems", "install_sanity_hook"]

log = logging.getLogger("torchlstm_params")

#: Every problem code, with what it means. Codes are stable: allow them by name.
CODES: Final[Mapping[str, str]] = {
    "RNN_SHAPE_MISMATCH": "a recurrent tensor's shape differs from its settings' formula",
    "RNN_TENSOR_MISSING": "a tensor the formula requires is not registered",
    "RNN_TENSOR_UNEXPECTED": "a recurrent module registers a tensor the formula does not have",
    "RNN_TENSOR_TIED": "one tensor is registered under two of a recurrent module's tensor names",
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
    "NON_FINITE_UNCHECKED": "a parameter's values could not be scanned for NaN or Inf (the reason is given)",
    "RNN_EXPLAINED_DIFFERENCE": "recurrent tensors differ from the formula in an explained way (only with strict=True)",
    "RNN_UNRECOGNISED": "a checkpoint's tensors are named like a torch recurrent module's but fit no torch layout",
}

_FINDING_CODES: Final = {
    "wrong_shape": "RNN_SHAPE_MISMATCH",
    "missing": "RNN_TENSOR_MISSING",
    "unexpected": "RNN_TENSOR_UNEXPECTED",
    "uninitialized": "LAZY_UNINITIALIZED",
    "tied": "RNN_TENSOR_TIED",
}
_ANY_MODULE_SETTINGS: Final = ("params", "trainable_params", "type")


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


def _expectation_problems(summary: Summary, expect: Mapping[str, Mapping[str, object]]) -> list[Problem]:
    report, tree = summary.report, summary.tree
    rows = {row.name: row for row in report.rows}
    index = {p: i for i, p in enumerate(tree.paths)}
    aliases = {a.path: a.same_as for a in report.aliases}
    recurrent = {e.name: e for e in report.recurrent}
    out = []
    for path, wanted in expect.items():
        path = aliases.get(path, path)
        if path not in index:
            close = difflib.get_close_matches(path, tree.paths, n=3, cutoff=0.5)
            hint = f"; closest: {', '.join(repr(c) for c in close)}" if close else ""
            out.append(Problem("MODULE_NOT_FOUND", path, f"no module at this path{hint}"))
            continue
        row = rows.get(path)
        entry = recurrent.get(path)
        found: dict[str, object] = {"type": type(tree.modules[index[path]]).__name__}
        if row is not None:
            found.update(params=row.params, trainable_params=row.trainable_params)
        if entry is not None:
            found.update(entry.settings)
        for key, value in wanted.items():
            if key not in found:
                if key in ("params", "trainable_params"):
                    message = f"{key} of {path!r} is not in the report (summarized with max_depth={report.max_depth})"
                    out.append(Problem("MODULE_NOT_FOUND", path, message))
                    continue
                message = f"{key}={value!r} asked of a {found['type']}, which is not recurrent"
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


def _module_problems(summary: Summary, allow_frozen: tuple[str, ...], check_finite: bool) -> list[Problem]:
    report, tree = summary.report, summary.tree
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
        if entry.dropout > 0 and entry.spec.num_layers == 1 and isinstance(module, nn.RNNBase):
            out.append(
                Problem(
                    "RNN_DROPOUT_NO_EFFECT",
                    entry.name,
                    f"dropout={entry.dropout} has no effect with num_layers=1 (dropout only applies between layers)",
                )
            )
    out.extend(_tensor_problems(tree, check_finite))
    return out


def _lazy(p: torch.Tensor) -> bool:
    return isinstance(p, UninitializedParameter | UninitializedBuffer)


def _tensor_problems(tree: Tree, check_finite: bool) -> list[Problem]:
    """One pass over the unique parameters: the devices they span and, if asked, NaN and Inf values."""
    where: dict[str, list[str]] = {}
    out = []
    with torch.no_grad():
        for path, name, p in unique_parameters(tree):
            if _lazy(p):
                continue
            where.setdefault(str(p.device), []).append(f"{path}.{name}" if path else name)
            if not check_finite or p.is_meta:
                continue
            found = _non_finite(p)
            if isinstance(found, str):
                kind = f"{str(p.dtype).removeprefix('torch.')}, {_layout(p)}"
                message = f"{name} ({kind}) could not be scanned for NaN/Inf: {found}"
                out.append(Problem("NON_FINITE_UNCHECKED", path, message))
            elif found is not None and (found[0] or found[1]):
                nan, inf, scanned = found
                of = f"{scanned:,} values"
                if p.layout not in (torch.strided, _MKLDNN):  # sparse: the stored values
                    of = f"{scanned:,} stored values ({_layout(p)}, {p.numel():,} in all)"
                out.append(Problem("NON_FINITE", path, f"{name} holds {nan:,} NaN and {inf:,} Inf of {of}"))
    if len(where) > 1:
        detail = "; ".join(
            f"{device}: {len(names)} tensors ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
            for device, names in sorted(where.items())
        )
        out.insert(0, Problem("MODEL_MULTI_DEVICE", "", f"expected one device, found {len(where)}: {detail}"))
    return out


def _layout(tensor: torch.Tensor) -> str:
    layout = str(tensor.layout).removeprefix("torch.").removeprefix("_")
    return f"{layout} nested" if tensor.is_nested else layout


#: Dtypes torch.isfinite, isnan and isinf handle (float8 is read through float32 instead: isfinite has no
#: kernel for most of them, and the one it has for float8_e8m0fnu calls its NaN finite).
_ISFINITE_DTYPES: Final = frozenset(
    {torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.complex128, torch.complex64, torch.complex32}
)
#: Floating dtypes with no encoding for NaN or Inf.
_ALWAYS_FINITE: Final = frozenset(
    dt for dt in (getattr(torch, "float4_e2m1fn_x2", None),) if isinstance(dt, torch.dtype)
)
_MKLDNN: Final = getattr(torch, "_mkldnn")  # noqa: B009  # the MKL-DNN layout (untyped in torch's stubs)
_CHUNK: Final = 1 << 22  # elements cast to float32 at a time: bounded extra memory for any tensor


def _non_finite(p: torch.Tensor) -> tuple[int, int, int] | str | None:
    """(NaN, Inf, values scanned) of ``p``'s stored values; None if it cannot hold either; else why it is not scanned.

    Reads every layout through the values it stores (sparse: the stored values; MKL-DNN: a dense copy;
    quantized: the dequantized values; nested: each component), never changing ``p``. A DTensor is scanned
    through this rank's shard: no collective call, each rank its own part.
    """
    try:
        values = _stored_values(p)
        dtype = values.dtype
        if not (dtype.is_floating_point or dtype.is_complex) or dtype in _ALWAYS_FINITE:
            return None
        if dtype in _ISFINITE_DTYPES:
            if bool(torch.isfinite(values).all()):
                return 0, 0, values.numel()
            return int(torch.isnan(values).sum()), int(torch.isinf(values).sum()), values.numel()
        flat = values.reshape(-1)
        nan = inf = 0
        for start in range(0, flat.numel(), _CHUNK):
            chunk = flat[start : start + _CHUNK].to(torch.float32)
            nan += int(torch.isnan(chunk).sum())
            inf += int(torch.isinf(chunk).sum())
        return nan, inf, flat.numel()
    except (NotImplementedError, RuntimeError, TypeError, ValueError, AttributeError) as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else '(no message)'}"


def _stored_values(p: torch.Tensor) -> torch.Tensor:
    """The values ``p`` stores, as a strided tensor (see :func:`_non_finite`)."""
    values = p.to_local() if hasattr(p, "to_local") else p
    if values.is_nested:
        return torch.cat([part.reshape(-1) for part in values.unbind()])
    if values.layout == torch.sparse_coo:
        return values._values()
    if values.layout in (torch.sparse_csr, torch.sparse_csc, torch.sparse_bsr, torch.sparse_bsc):
        return values.values()
    if values.layout == _MKLDNN:
        return values.to_dense()
    if values.is_quantized:
        return values.dequantize()
    return values


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """What ``check`` is asked to check: the keyword arguments of :func:`check`, validated once."""

    mode: str = "raise"
    expect_params: int | None = None
    max_params: int | None = None
    min_params: int | None = None
    expect_trainable: int | None = None
    expect: Mapping[str, Mapping[str, object]] = dataclasses.field(default_factory=dict)
    allow_frozen: tuple[str, ...] = ()
    allow: frozenset[str] = frozenset()
    check_finite: bool = True
    strict: bool = False
    registry: Registry | None = None


def check_options(caller: str = "check", **options: Any) -> CheckOptions:
    """Validate :func:`check`'s keyword arguments now (before any training code runs), naming each bad one."""
    accepted = [f.name for f in dataclasses.fields(CheckOptions)]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, accepted, n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise InvalidSettingsError(
            f"{caller}() got unknown options {', '.join(hints)}; accepted: {', '.join(accepted)}"
        )
    mode = options.get("mode", "raise")
    if mode not in ("raise", "warn"):
        raise InvalidSettingsError(f"{caller}(): mode must be 'raise' or 'warn', got: {mode!r}")
    for name in ("expect_params", "max_params", "min_params", "expect_trainable"):
        value = options.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InvalidSettingsError(f"{caller}(): {name} must be an int >= 0, got: {value!r}")
    expect = options.get("expect") or {}
    if not isinstance(expect, Mapping):
        raise InvalidSettingsError(
            f"{caller}(): expect must be a mapping of module path -> settings, got: {expect!r:.80}"
        )
    for path, wanted in expect.items():
        _check_expectation(caller, path, wanted)
    allow_frozen = _strings(caller, "allow_frozen", options.get("allow_frozen", ()))
    allow = frozenset(_strings(caller, "allow", options.get("allow", ())))
    unknown_codes = sorted(allow - set(CODES))
    if unknown_codes:
        raise InvalidSettingsError(
            f"{caller}(): allow names unknown problem codes {unknown_codes}; known: {', '.join(CODES)}"
        )
    for name in ("check_finite", "strict"):
        if name in options and not isinstance(options[name], bool):
            raise InvalidSettingsError(f"{caller}(): {name} must be True or False, got: {options[name]!r}")
    registry = options.get("registry")
    if registry is not None and not isinstance(registry, Registry):
        raise InvalidSettingsError(
            f"{caller}(): registry must be a torchlstm_params.Registry, got: {type(registry).__name__}"
        )
    return CheckOptions(
        mode=mode,
        expect_params=options.get("expect_params"),
        max_params=options.get("max_params"),
        min_params=options.get("min_params"),
        expect_trainable=options.get("expect_trainable"),
        expect=dict(expect),
        allow_frozen=allow_frozen,
        allow=allow,
        check_finite=options.get("check_finite", True),
        strict=options.get("strict", False),
        registry=registry,
    )


def _strings(caller: str, name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidSettingsError(f"{caller}(): {name} must be a list of strings, got: {value!r:.80}")
    items = tuple(value)
    if not all(isinstance(item, str) for item in items):
        raise InvalidSettingsError(f"{caller}(): {name} must be a list of strings, got: {items!r:.80}")
    return items


def _check_expectation(caller: str, path: object, wanted: object) -> None:
    if not isinstance(path, str):
        raise InvalidSettingsError(f"{caller}(): expect keys are module paths (str), got: {path!r}")
    if not isinstance(wanted, Mapping):
        raise InvalidSettingsError(
            f"{caller}(): expect[{path!r}] must be a mapping of setting -> value, got {wanted!r}"
        )
    known = SETTINGS + _ANY_MODULE_SETTINGS
    for key in wanted:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InvalidSettingsError(
                f"{caller}(): expect[{path!r}] has unknown setting {key!r}{hint}; known: {', '.join(known)}"
            )


def problems_in(summary: Summary, options: CheckOptions) -> tuple[Problem, ...]:
    """Every problem of a summarized model under ``options``, minus the codes it allows."""
    report = summary.report
    problems = _count_problems(
        report, options.expect_params, options.max_params, options.min_params, options.expect_trainable
    )
    for entry in report.recurrent:
        problems.extend(_finding_problems(entry, options.strict))
    problems.extend(_expectation_problems(summary, options.expect))
    problems.extend(_module_problems(summary, options.allow_frozen, options.check_finite))
    return tuple(p for p in problems if p.code not in options.allow)


def find_problems(model: nn.Module, **options: Any) -> tuple[Report, tuple[Problem, ...]]:
    """Summarize ``model`` and list every problem, minus the codes in ``allow``.

    Takes :func:`check`'s keyword arguments (``mode`` aside). Differences the summary
    explains (weight_norm, packed weights, extra parameters...) are problems only
    with ``strict=True``.
    """
    checked = check_options("find_problems", **options)
    summary = summarize_tree(model, registry=checked.registry)
    return summary.report, problems_in(summary, checked)


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
    and returns the report. The model is walked once.

    >>> from torch import nn
    >>> check(nn.LSTM(3, 2), expect_params=56).total_params
    56
    """
    options = check_options(
        "check",
        mode=mode,
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
    return run_check(summarize_tree(model, registry=options.registry), options)


def run_check(summary: Summary, options: CheckOptions) -> Report:
    """:func:`check` on an already summarized model."""
    problems = problems_in(summary, options)
    if problems:
        if options.mode == "raise":
            raise CheckFailedError(problems, summary.report)
        for problem in problems:
            log.warning("%s", problem)
    return summary.report


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
    # Fail on a typo or a bad value in the options now, before any training code runs.
    checked = check_options("install_sanity_hook", **options)
    handle: RemovableHandle

    def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        try:
            run_check(summarize_tree(module, registry=checked.registry), checked)
        finally:
            handle.remove()

    handle = model.register_forward_pre_hook(hook)
    return handle
