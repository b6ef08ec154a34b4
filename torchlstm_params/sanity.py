"""Pre-training sanity check: every problem found at once, each with a stable code.

``check(model, **expectations)`` returns the :class:`Report` (its ``check`` field
says what ran, what was skipped and why, and every problem) when nothing fails,
and otherwise raises one :class:`CheckFailedError` that lists every problem (or,
with ``mode="warn"``, logs them). Each code has a severity (:data:`SEVERITIES`):
errors fail the check, warnings are logged and listed and fail only under
``strict=True``. ``find_problems`` is the same search, returning the problems as
data; ``evaluate`` is the check on a summary, returning a :class:`CheckResult`.
``install_sanity_hook`` runs ``check`` when the model is called, until one passes.
All of them read the model through one ``summarize`` walk: the report and its tree.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import logging
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import torch
from torch import nn
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter
from torch.utils.hooks import RemovableHandle

from .errors import CheckFailedError, InvalidSettingsError, NotAModuleError, Problem
from .formulas import SETTINGS
from .names import qualified
from .registry import Registry
from .results import CheckResult, RecurrentEntry, Report
from .scan import ValueScan, scan_tensors
from .summary import Summary, summarize_tree
from .walk import Tree, unique_parameters

__all__ = [
    "CODES",
    "SEVERITIES",
    "CheckOptions",
    "Problem",
    "check",
    "check_options",
    "evaluate",
    "find_problems",
    "install_sanity_hook",
    "problems_in",
    "run_check",
]

log = logging.getLogger("torchlstm_params")

# Every problem code: its severity and what it means, in one table. Errors fail the check;
# warnings are logged and listed, and fail only under strict=True.
_CODE_TABLE: Final = {
    "RNN_SHAPE_MISMATCH": ("error", "a recurrent tensor's shape differs from its settings' formula"),
    "RNN_TENSOR_MISSING": ("error", "a tensor the formula requires is not registered"),
    "RNN_TENSOR_UNEXPECTED": ("error", "a recurrent module registers a tensor the formula does not have"),
    "RNN_TENSOR_TIED": ("error", "one tensor is registered under two of a recurrent module's tensor names"),
    "LAZY_UNINITIALIZED": ("error", "a lazy parameter has not been initialised (no dry-run forward yet)"),
    "PARAMS_MISMATCH": ("error", "the total parameter count is not expect_params"),
    "PARAMS_OVER_BUDGET": ("error", "the total parameter count is above max_params"),
    "PARAMS_UNDER_BUDGET": ("error", "the total parameter count is below min_params"),
    "TRAINABLE_MISMATCH": ("error", "the trainable parameter count is not expect_trainable"),
    "MODULE_NOT_FOUND": ("error", "a path in expect= names no module"),
    "MODULE_NOT_RECURRENT": ("error", "expect= asks recurrent settings of a module that is not recurrent"),
    "SETTING_MISMATCH": ("error", "a module's setting is not the one expect= asks for"),
    "RNN_FROZEN": ("error", "recurrent weights are frozen while the rest of the model trains"),
    "RNN_MIXED_DTYPE": ("error", "one recurrent module holds tensors of several dtypes (its forward fails)"),
    "RNN_MIXED_DEVICE": ("error", "one recurrent module holds tensors on several devices (its forward fails)"),
    "MODEL_MULTI_DEVICE": ("warning", "the model's parameters span several devices (fine for model parallelism)"),
    "RNN_NOT_FLAT": (
        "warning",
        "CUDA recurrent weights are not one contiguous chunk: torch warns and copies them on every call",
    ),
    "RNN_DROPOUT_NO_EFFECT": ("warning", "dropout > 0 on a single-layer RNN does nothing (torch only warns)"),
    "NON_FINITE": ("error", "a parameter (or a checkpoint's tensor) holds NaN or Inf values"),
    "NON_FINITE_UNCHECKED": (
        "error",
        "a parameter's values could not be scanned for NaN or Inf (the reason is given)",
    ),
    "RNN_EXPLAINED_DIFFERENCE": (
        "error",
        "recurrent tensors differ from the formula in an explained way (reported only with strict=True)",
    ),
    "RNN_UNRECOGNISED": (
        "error",
        "a checkpoint's tensors are named like a torch recurrent module's but fit no torch layout",
    ),
}

#: Every problem code, with what it means. Codes are stable: allow them by name.
CODES: Final[Mapping[str, str]] = {code: meaning for code, (_, meaning) in _CODE_TABLE.items()}
#: Every problem code's severity: ``"error"`` fails the check, ``"warning"`` is logged and
#: listed and fails only under ``strict=True``.
SEVERITIES: Final[Mapping[str, str]] = {code: severity for code, (severity, _) in _CODE_TABLE.items()}
#: The parts of the check, in the order ``CheckResult.ran`` lists them.
PARTS: Final = ("tensors", "counts", "expect", "settings", "values")


def _problem(code: str, path: str, message: str) -> Problem:
    return Problem(code, path, message, SEVERITIES[code])


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
            _problem(
                "PARAMS_MISMATCH",
                "",
                f"expected {expect_params:,} parameters, found {total:,} ({total - expect_params:+,})",
            )
        )
    if max_params is not None and total > max_params:
        out.append(_problem("PARAMS_OVER_BUDGET", "", f"expected at most {max_params:,} parameters, found {total:,}"))
    if min_params is not None and total < min_params:
        out.append(_problem("PARAMS_UNDER_BUDGET", "", f"expected at least {min_params:,} parameters, found {total:,}"))
    trainable = report.trainable_params
    if expect_trainable is not None and trainable != expect_trainable:
        out.append(
            _problem(
                "TRAINABLE_MISMATCH", "", f"expected {expect_trainable:,} trainable parameters, found {trainable:,}"
            )
        )
    if report.uninitialized:
        for name in report.uninitialized:
            module_path, _, tensor = name.rpartition(".")
            out.append(
                _problem(
                    "LAZY_UNINITIALIZED",
                    module_path,
                    f"{tensor} is uninitialized (lazy); run one forward pass to materialize it",
                )
            )
    return out


def _finding_problems(entry: RecurrentEntry, strict: bool) -> list[Problem]:
    out: list[Problem] = []
    if strict:
        out.extend(_problem("RNN_EXPLAINED_DIFFERENCE", entry.name, e.message) for e in entry.explanations)
    for finding in entry.findings:
        if finding.problem == "uninitialized":  # reported once, with every lazy tensor of the model
            continue
        out.append(_problem(_FINDING_CODES[finding.problem], entry.name, finding.message()))
    return out


def _expectation_problems(summary: Summary, expect: Mapping[str, Mapping[str, object]]) -> list[Problem]:
    report, tree = summary.report, summary.tree
    aliases = {a.path: a.same_as for a in report.aliases}
    index = tree.locate(aliases.get(path, path) for path in expect if isinstance(path, str))
    recurrent = {e.name: e for e in report.recurrent}
    out = []
    for path, wanted in expect.items():
        path = aliases.get(path, path)
        if path not in index:
            close = tree.closest(path)
            hint = f"; closest: {', '.join(repr(c) for c in close)}" if close else ""
            out.append(_problem("MODULE_NOT_FOUND", path, f"no module at this path{hint}"))
            continue
        row = report.rows.find(path)
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
                    out.append(_problem("MODULE_NOT_FOUND", path, message))
                    continue
                message = f"{key}={value!r} asked of a {found['type']}, which is not recurrent"
                out.append(_problem("MODULE_NOT_RECURRENT", path, message))
                break
            have = found[key]
            if key == "kind" and isinstance(value, str) and isinstance(have, str):
                matched = value.upper() in (have.upper(), have.upper().removesuffix("_TANH"))
            else:
                matched = have == value
            if not matched:
                out.append(_problem("SETTING_MISMATCH", path, f"{key} expected {value!r}, found {have!r}"))
    return out


def _allowed(path: str, names: Iterable[str], patterns: tuple[str, ...]) -> bool:
    candidates = [path, *(qualified(path, n) for n in names)]
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


def _module_problems(summary: Summary, allow_frozen: tuple[str, ...], interface: str) -> list[Problem]:
    report, tree = summary.report, summary.tree
    modules = {path: tree.modules[i] for path, i in tree.locate(e.name for e in report.recurrent).items()}
    out: list[Problem] = []
    anything_trains = report.trainable_params > 0
    for entry in report.recurrent:
        module = modules[entry.name]
        tensors = [(n, p) for n, p in module._parameters.items() if p is not None and not _lazy(p)]
        frozen = [n for n, p in tensors if not p.requires_grad]
        if frozen and anything_trains and not _allowed(entry.name, frozen, allow_frozen):
            remedy = (
                f"--allow-frozen {shlex.quote(entry.name)}" if interface == "cli" else f"allow_frozen=[{entry.name!r}]"
            )
            out.append(
                _problem(
                    "RNN_FROZEN",
                    entry.name,
                    f"{len(frozen)} of {len(tensors)} tensors have requires_grad=False ({', '.join(frozen)}) while "
                    f"{report.trainable_params:,} parameters train; pass {remedy} if intended",
                )
            )
        dtypes = sorted({str(p.dtype).removeprefix("torch.") for _, p in tensors})
        if len(dtypes) > 1:
            detail = ", ".join(f"{n}: {str(p.dtype).removeprefix('torch.')}" for n, p in tensors)
            message = f"expected one dtype, found {', '.join(dtypes)} ({detail})"
            out.append(_problem("RNN_MIXED_DTYPE", entry.name, message))
        devices = sorted({str(p.device) for _, p in tensors})
        if len(devices) > 1:
            detail = ", ".join(f"{n}: {p.device}" for n, p in tensors)
            out.append(
                _problem("RNN_MIXED_DEVICE", entry.name, f"expected one device, found {', '.join(devices)} ({detail})")
            )
        if isinstance(module, nn.RNNBase) and tensors and all(p.is_cuda for _, p in tensors) and len(dtypes) == 1:
            flat = [p for _, p in tensors]
            if not weights_in_one_chunk(flat):
                out.append(
                    _problem(
                        "RNN_NOT_FLAT",
                        entry.name,
                        "weights are not one contiguous chunk of memory, so every forward call re-copies them "
                        "and warns; call module.flatten_parameters() after moving or replacing weights",
                    )
                )
        if entry.dropout > 0 and entry.spec.num_layers == 1 and isinstance(module, nn.RNNBase):
            out.append(
                _problem(
                    "RNN_DROPOUT_NO_EFFECT",
                    entry.name,
                    f"dropout={entry.dropout} has no effect with num_layers=1 (dropout only applies between layers)",
                )
            )
    out.extend(_device_problems(tree))
    return out


def _lazy(p: torch.Tensor) -> bool:
    return isinstance(p, UninitializedParameter | UninitializedBuffer)


def _device_problems(tree: Tree) -> list[Problem]:
    """The devices the unique parameters span."""
    where: dict[str, list[str]] = {}
    for path, name, p in unique_parameters(tree):
        if not _lazy(p):
            where.setdefault(str(p.device), []).append(qualified(path, name))
    if len(where) <= 1:
        return []
    detail = "; ".join(
        f"{device}: {len(names)} tensors ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
        for device, names in sorted(where.items())
    )
    return [_problem("MODEL_MULTI_DEVICE", "", f"expected one device, found {len(where)}: {detail}")]


def _value_problems(scan: ValueScan) -> list[Problem]:
    out = []
    for found in scan.non_finite:
        path, _, name = found.name.rpartition(".")
        of = f"{found.numel:,} values"
        if found.total is not None:  # sparse: the stored values
            of = f"{found.numel:,} stored values ({found.layout}, {found.total:,} in all)"
        message = f"{name} holds {found.nan:,} NaN and {found.inf:,} Inf of {of}"
        out.append(_problem("NON_FINITE", path, message))
    for full, kind, why in scan.unchecked:
        path, _, name = full.rpartition(".")
        out.append(_problem("NON_FINITE_UNCHECKED", path, f"{name} ({kind}) could not be scanned for NaN/Inf: {why}"))
    return out


def live_values(tree: Tree) -> ValueScan:
    """Scan the model's unique parameters for NaN and Inf (this rank's shard of a DTensor)."""
    return scan_tensors((qualified(path, name), p) for path, name, p in unique_parameters(tree))


def _values_ran(scan: ValueScan) -> bool | str:
    if scan.complete:
        return True
    reasons = "; ".join(f"{count:,} tensors {reason}" for reason, count in scan.skipped.items())
    if scan.tensors == 0:
        return f"skipped: no tensor has values to read ({reasons})"
    return f"skipped for some tensors: {reasons} ({scan.tensors:,} others scanned)"


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """What ``check`` is asked to check: the keyword arguments of :func:`check`, validated once.

    ``interface`` (``"python"`` or ``"cli"``, set by :func:`check_options` from its caller)
    only phrases remedies for the interface in use (``allow_frozen=[...]`` or ``--allow-frozen``).
    """

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
    interface: str = "python"


_COUNT_OPTIONS: Final = ("expect_params", "max_params", "min_params", "expect_trainable")


def _option(caller: str, name: str) -> str:
    """How a message names an option: ``check(): expect_params``, or the flag ``--allow-frozen`` on the CLI."""
    return f"--{name.replace('_', '-')}" if caller.startswith("--") else f"{caller}(): {name}"


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_options(caller: str = "check", **options: Any) -> CheckOptions:
    """Validate :func:`check`'s keyword arguments now (before any training code runs), naming each bad one.

    ``caller`` names the function (or, starting with ``--``, the command line) in messages.
    """
    accepted = [f.name for f in dataclasses.fields(CheckOptions) if f.name != "interface"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        hints = [f"{name!r}{_did_you_mean(name, accepted)}" for name in unknown]
        raise InvalidSettingsError(
            f"{caller}() got unknown options {', '.join(hints)}; accepted: {', '.join(accepted)}"
        )
    mode = options.get("mode", "raise")
    if mode not in ("raise", "warn"):
        raise InvalidSettingsError(f"{_option(caller, 'mode')} must be 'raise' or 'warn', got: {mode!r}")
    for name in _COUNT_OPTIONS:
        value = options.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InvalidSettingsError(f"{_option(caller, name)} must be an int >= 0, got: {value!r}")
    expect = options.get("expect") or {}
    if not isinstance(expect, Mapping):
        raise InvalidSettingsError(
            f"{_option(caller, 'expect')} must be a mapping of module path -> settings, got: {expect!r:.80}"
        )
    for path, wanted in expect.items():
        _check_expectation(caller, path, wanted)
    allow_frozen = _strings(caller, "allow_frozen", options.get("allow_frozen", ()))
    allow = frozenset(_strings(caller, "allow", options.get("allow", ())))
    unknown_codes = sorted(allow - set(CODES))
    if unknown_codes:
        named = ", ".join(f"{code!r}{_did_you_mean(code, list(CODES))}" for code in unknown_codes)
        raise InvalidSettingsError(
            f"{_option(caller, 'allow')} names unknown problem codes {named}; known: {', '.join(CODES)}"
        )
    for name in ("check_finite", "strict"):
        if name in options and not isinstance(options[name], bool):
            raise InvalidSettingsError(f"{_option(caller, name)} must be True or False, got: {options[name]!r}")
    registry = options.get("registry")
    if registry is not None and not isinstance(registry, Registry):
        raise InvalidSettingsError(
            f"{_option(caller, 'registry')} must be a torchlstm_params.Registry, got: {type(registry).__name__}"
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
        interface="cli" if caller.startswith("--") else "python",
    )


def _strings(caller: str, name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidSettingsError(f"{_option(caller, name)} must be a list of strings, got: {value!r:.80}")
    items = tuple(value)
    if not all(isinstance(item, str) for item in items):
        raise InvalidSettingsError(f"{_option(caller, name)} must be a list of strings, got: {items!r:.80}")
    return items


def _check_expectation(caller: str, path: object, wanted: object) -> None:
    where = _option(caller, "expect")
    if not isinstance(path, str):
        raise InvalidSettingsError(f"{where} keys are module paths (str), got: {path!r}")
    if not isinstance(wanted, Mapping):
        raise InvalidSettingsError(f"{where}[{path!r}] must be a mapping of setting -> value, got {wanted!r}")
    known = SETTINGS + _ANY_MODULE_SETTINGS
    for key in wanted:
        if key not in known:
            raise InvalidSettingsError(
                f"{where}[{path!r}] has unknown setting {key!r}{_did_you_mean(str(key), known)}; "
                f"known: {', '.join(known)}"
            )


def _relabel(problems: Iterable[Problem], root: str) -> tuple[Problem, ...]:
    """Problems with paths named from ``root`` (``"decoder"``: ``"" -> "decoder"``, ``"rnn" -> "decoder.rnn"``)."""
    if not root:
        return tuple(problems)
    return tuple(dataclasses.replace(p, path=f"{root}.{p.path}" if p.path else root) for p in problems)


def evaluate(
    summary: Summary, options: CheckOptions, *, values: ValueScan | None = None, root: str = ""
) -> CheckResult:
    """Run every part of the check on a summarized model: what ran, what was skipped, every problem.

    ``values`` is a value scan made elsewhere (a checkpoint file's, read through its map);
    without it the model's own parameters are scanned, when ``check_finite``. ``root``
    names the model in problem paths (``"decoder"``: ``"rnn"`` reads ``"decoder.rnn"``).
    Codes in ``allow`` are dropped.
    """
    report = summary.report
    problems = _count_problems(
        report, options.expect_params, options.max_params, options.min_params, options.expect_trainable
    )
    for entry in report.recurrent:
        problems.extend(_finding_problems(entry, options.strict))
    problems.extend(_expectation_problems(summary, options.expect))
    problems.extend(_module_problems(summary, options.allow_frozen, options.interface))
    ran: dict[str, bool | str] = {
        "tensors": True,
        "counts": any(getattr(options, name) is not None for name in _COUNT_OPTIONS),
        "expect": bool(options.expect),
        "settings": True,
        "values": False,
    }
    scan = values
    if scan is None and options.check_finite:
        with torch.no_grad():
            scan = live_values(summary.tree)
    if scan is not None:
        ran["values"] = _values_ran(scan)
        problems.extend(_value_problems(scan))
    kept = _relabel((p for p in problems if p.code not in options.allow), root)
    return CheckResult(ran, kept, options.strict, scan)


def problems_in(summary: Summary, options: CheckOptions) -> tuple[Problem, ...]:
    """Every problem of a summarized model under ``options``, minus the codes it allows."""
    return evaluate(summary, options).problems


def find_problems(model: nn.Module, **options: Any) -> tuple[Report, tuple[Problem, ...]]:
    """Summarize ``model`` and list every problem, minus the codes in ``allow``.

    Takes :func:`check`'s keyword arguments (``mode`` aside). Differences the summary
    explains (weight_norm, packed weights, extra parameters...) are problems only
    with ``strict=True``. The report carries the whole result in ``report.check``.
    """
    checked = check_options("find_problems", **options)
    summary = summarize_tree(model, registry=checked.registry)
    result = evaluate(summary, checked)
    return dataclasses.replace(summary.report, check=result), result.problems


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

    Returns the :class:`Report`, with the check's result in ``report.check`` (what ran,
    what was skipped and why, every problem with its severity), when nothing fails.
    Errors fail the check; warnings (see :data:`SEVERITIES`) are logged on the
    ``torchlstm_params`` logger and listed, and fail too with ``strict=True``. On a
    failure ``mode="raise"`` (default) raises :class:`CheckFailedError` listing every
    problem; ``mode="warn"`` logs each one and returns the report. The model is walked once.

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


def run_check(summary: Summary, options: CheckOptions, *, root: str = "") -> Report:
    """:func:`check` on an already summarized model; ``root`` names the model in problem paths."""
    result = evaluate(summary, options, root=root)
    report = dataclasses.replace(summary.report, check=result)
    if result.failing and options.mode == "raise":
        raise CheckFailedError(result.problems, report)
    for problem in result.problems:
        log.warning("%s", problem)
    for part, why in result.skipped.items():
        log.info("sanity check of %s: %s skipped: %s", root or report.model_type, part, why)
    return report


def install_sanity_hook(model: nn.Module, *, name: str | None = None, **options: Any) -> RemovableHandle:
    """Run ``check(model, **options)`` when ``model`` is called, and remove the hook once a check passes.

    A check that fails raises from the forward call and leaves the hook in place, so the
    next call (a notebook cell run again) checks again. Problem paths are named from
    ``model``: ``name`` if given, else its class name (a hook on ``model.decoder``
    reports ``"GRUDecoder.rnn"``, not ``"rnn"``); ``expect=`` paths stay relative to ``model``.

    Returns the hook's :class:`~torch.utils.hooks.RemovableHandle`; it is also
    a context manager, so ``with install_sanity_hook(model): ...`` removes the
    hook on exit even if the model was never called. Options are validated
    now, not at the first forward call.

    A forward pre-hook runs only when the module is *called* (``model(x)``): code that calls
    ``model.forward(x)`` or another method (``model.loss(x)``) directly bypasses it. Run
    :func:`check` before training there, or use the Lightning callback.

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
    if name is not None and not isinstance(name, str):
        raise InvalidSettingsError(f"install_sanity_hook(): name must be a str, got: {name!r:.80}")
    # Fail on a typo or a bad value in the options now, before any training code runs.
    checked = check_options("install_sanity_hook", **options)
    label = type(model).__name__ if name is None else name
    handle: RemovableHandle

    def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        run_check(summarize_tree(module, registry=checked.registry), checked, root=label)
        handle.remove()  # only after a check that did not fail: a failing model is checked again

    handle = model.register_forward_pre_hook(hook)
    return handle
