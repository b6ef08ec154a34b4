"""``torchlstm-params SPEC``: summarize a layer expression, a model factory, a checkpoint, or a Keras/ONNX file.

``.keras``, ``.h5`` and ``.onnx`` files go to their readers (:mod:`.keras_file`, :mod:`.onnx_file`):
each recurrent layer's Keras (or ONNX) count, its PyTorch equivalent and count, and the stored
shapes cross-checked against the settings.

Exit codes: 0 every recurrent module is consistent (and the check, if asked, found
nothing that fails); 1 a mismatch or a failed check, with one line on stderr saying
which; 2 bad usage or an input that cannot be read (one line on stderr, never a
traceback unless ``--debug``); 130 interrupted (Ctrl-C); 141 the reader of stdout
went away (``| head``), quietly, as a tool killed by SIGPIPE would.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import io
import json
import os
import re
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from . import __version__
from .checkpoint import build_model, pickled_names, read_checkpoint
from .display import use_color
from .errors import Problem, TorchLstmParamsError
from .file_render import keras_file_csv, onnx_file_csv, render_keras_file, render_onnx_file
from .formulas import count_params, make_spec
from .keras_file import read_keras_file
from .memory import OPTIMIZER_STATES, TrainingMemory, training_memory
from .onnx_file import read_onnx_file
from .render import DEFAULT_DEPTH, check_lines, format_bytes, paint
from .results import CheckResult, Report
from .sanity import CheckOptions, check_options, evaluate
from .scan import ScanRefused, ValueScan, scan_file
from .sizing import closest_configs, fit_hidden_size
from .spec import LayerExpression, build_factory, excerpt, is_expression, read_expression
from .summary import Summary, summarize_stack, summarize_tree

__all__ = ["EXIT_CODES", "STAND_IN_DEPTH", "main"]

#: What each exit code means.
EXIT_CODES: Final = {
    0: "consistent (and the check, if asked, found nothing that fails)",
    1: "a recurrent module does not match its formula, or the check failed",
    2: "bad usage or an input that cannot be read",
    130: "interrupted (Ctrl-C)",
    141: "the reader of stdout went away (a closed pipe)",
}
#: Layer expressions deeper than this are answered from their settings, with a 2-layer stand-in.
STAND_IN_DEPTH: Final = 64

_FORMATS = {"table": "simple", "github": "github", "markdown": "pipe", "json": "", "csv": ""}
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".tar")
_FILE_FACTORY = re.compile(r".+\.py:[A-Za-z_][\w.]*")
_FOREIGN_SUFFIXES = (".keras", ".h5", ".onnx")
# Options that describe a torch model, which a Keras or ONNX report has no use for.
_TORCH_ONLY = (
    "kwargs",
    "trust_pickle",
    "buffers",
    "depth",
    "batch",
    "seq_len",
    "lengths",
    "optimizer",
    "budget",
    "plot",
    "build_real",
    "strict",
    "allow",
    "allow_frozen",
)


class _ReaderGone(Exception):
    """stdout's reader closed the pipe."""


class _WriteFailed(Exception):
    """stdout could not be written (a full disk, /dev/full)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torchlstm-params",
        description="Exact parameter counts for PyTorch models, with LSTM/GRU/RNN formulas cross-checked.",
        epilog='examples:  torchlstm-params "LSTM(512, 1024, num_layers=3, bidirectional=True)" --keras\n'
        "           torchlstm-params mypkg.models:build --kwargs '{\"hidden\": 256}'\n"
        "           torchlstm-params checkpoint.ckpt --check --format github\n"
        "           torchlstm-params 'LSTM(300, num_layers=2)' --budget 5000000\n"
        "           torchlstm-params model.keras   (also legacy .h5 and .onnx files)\n"
        "exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "spec",
        help="a layer expression ('GRU(64, 128)'), a factory 'package.module:callable' or "
        "'path/to/file.py:callable', or a checkpoint file",
    )
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument(
        "--expression", action="store_const", const="expression", dest="kind", help="SPEC is a layer expression"
    )
    kind.add_argument("--factory", action="store_const", const="factory", dest="kind", help="SPEC is a model factory")
    kind.add_argument("--checkpoint", action="store_const", const="checkpoint", dest="kind", help="SPEC is a file")
    parser.add_argument("--kwargs", default=None, help="JSON object of keyword arguments for a factory")
    parser.add_argument(
        "--build-real",
        action="store_true",
        help="build a factory on the CPU with real weights instead of on meta (so --check can scan its values)",
    )
    parser.add_argument("--format", choices=list(_FORMATS), default="table", help="output format (default: table)")
    parser.add_argument(
        "--depth",
        type=_depth,
        default="auto",
        help=f"module rows down to this depth, every section ('all': everything; default: {DEFAULT_DEPTH} for the "
        "module table, identical siblings folded)",
    )
    parser.add_argument("--no-fold", action="store_true", help="one row per module: do not fold alike siblings")
    parser.add_argument("--keras", action="store_true", help="add the Keras-convention count")
    parser.add_argument(
        "--explain", action="store_true", help="add the per-layer breakdown and the derivation of every recurrent count"
    )
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour status words (auto: on a terminal, unless NO_COLOR is set)",
    )
    parser.add_argument(
        "--plot",
        metavar="FILE",
        default=None,
        help="also draw where the parameters live: FILE.html (interactive, offline), .svg or .png (needs kaleido); "
        "needs the plot extra (plotly)",
    )
    parser.add_argument("--check", action="store_true", help="run the sanity check; a failure sets exit code 1")
    parser.add_argument("--strict", action="store_true", help="with --check: warnings and explained differences fail")
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="CODE",
        help="with --check: accept problems with this code (the README lists them)",
    )
    parser.add_argument(
        "--allow-frozen",
        action="append",
        default=[],
        metavar="PATTERN",
        help="with --check: accept frozen recurrent weights at module paths matching this pattern",
    )
    parser.add_argument(
        "--batch", type=int, default=None, help="batch size for compute, returned-state and saved-for-backward figures"
    )
    parser.add_argument(
        "--seq-len",
        type=_seq_len,
        default=None,
        help="sequence length for compute, returned-state and saved-for-backward figures; per module: "
        "'encoder=50,decoder=10' (a bare number is the length of every other module: '200,decoder=10')",
    )
    parser.add_argument(
        "--lengths", default=None, help="comma-separated lengths of a packed batch (instead of --seq-len)"
    )
    parser.add_argument(
        "--optimizer",
        choices=sorted(OPTIMIZER_STATES),
        default=None,
        help="print training memory with this optimizer (with --batch: plus the recurrent saved activations)",
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=None,
        help="with a layer expression such as 'LSTM(300, num_layers=2)': the largest hidden size within this count",
    )
    parser.add_argument("--trust-pickle", action="store_true", help="load pickled objects from a checkpoint you trust")
    parser.add_argument(
        "--buffers",
        default=None,
        metavar="REGEX",
        help="a state dict's tensors whose name matches REGEX (re.search) are buffers, instead of the "
        "conventional buffer names (integer/bool tensors are buffers either way)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _depth(text: str) -> int | str | None:
    if text == "all":
        return None
    if text == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int >= 0, 'all' or 'auto', got {text!r}") from None


def _seq_len(text: str) -> int | dict[str, int]:
    """``200`` or ``encoder=50,decoder=10`` (a bare number inside the list covers every other module)."""
    try:
        if "=" not in text:
            return int(text)
        out: dict[str, int] = {}
        for part in text.split(","):
            path, sep, length = part.rpartition("=")
            out[path.strip() if sep else ""] = int(length)
        return out
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an int or 'path=int,...' (e.g. 'encoder=50,decoder=10'), got {text!r}"
        ) from None


def _exists(spec: str) -> bool:
    try:
        return Path(spec).exists()
    except (OSError, ValueError):  # a name too long for a path, or one holding a NUL: not a file
        return False


def _kind(spec: str) -> str:
    if _exists(spec):  # an existing file wins: "LSTM_FCN (1).pt" is a download, not an expression
        return "checkpoint"
    if is_expression(spec):
        return "expression"
    if _FILE_FACTORY.fullmatch(spec):
        return "factory"
    if Path(spec).suffix in _CHECKPOINT_SUFFIXES or "/" in spec or "\\" in spec:
        return "checkpoint"
    return "factory"


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _at_least(flag: str, value: object, minimum: int) -> None:
    if isinstance(value, int) and value < minimum:
        raise TorchLstmParamsError(f"{flag} must be an int >= {minimum}, got: {value}")
    if isinstance(value, dict):
        for path, length in value.items():
            _at_least(f"{flag} for {path!r}" if path else flag, length, minimum)


def _lengths(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        lengths = [int(part) for part in text.split(",")]
    except ValueError:
        lengths = []
    if not lengths or min(lengths) < 1:
        raise TorchLstmParamsError(f"--lengths must be comma-separated integers >= 1, got {excerpt(text, 60)}")
    return lengths


def _check_flags(args: argparse.Namespace, kind: str) -> None:
    """Every flag's value and combination, named as the user typed it."""
    _at_least("--depth", args.depth, 0)
    _at_least("--batch", args.batch, 1)
    _at_least("--seq-len", args.seq_len, 1)
    _at_least("--budget", args.budget, 0)
    if args.lengths is not None and (args.batch is not None or args.seq_len is not None):
        raise TorchLstmParamsError("give --lengths (a packed batch) or --batch with --seq-len, not both")
    if (args.batch is None) != (args.seq_len is None) and args.lengths is None:
        given, missing = ("--batch", "--seq-len") if args.seq_len is None else ("--seq-len", "--batch")
        raise TorchLstmParamsError(f"{given} needs {missing} too (or give --lengths for a packed batch)")
    check_flags = (("--strict", args.strict), ("--allow", args.allow), ("--allow-frozen", args.allow_frozen))
    needs_check = [flag for flag, on in check_flags if on]
    if needs_check and not args.check:
        raise TorchLstmParamsError(f"{', '.join(needs_check)} apply to --check; add --check")
    for flag, on, wanted in (
        ("--kwargs", args.kwargs is not None, "factory"),
        ("--build-real", args.build_real, "factory"),
        ("--trust-pickle", args.trust_pickle, "checkpoint"),
        ("--buffers", args.buffers is not None, "checkpoint"),
    ):
        if on and kind != wanted:
            raise TorchLstmParamsError(f"{flag} applies to {_a(wanted)}, not to {_a(kind)}")
    if args.budget is not None:
        if kind != "expression":
            raise TorchLstmParamsError(
                f"--budget takes a layer expression such as 'LSTM(300, num_layers=2)' (the hidden size is what it "
                f"finds), not {_a(kind)}"
            )
        others = [
            flag
            for flag, on in (
                ("--check", args.check),
                ("--keras", args.keras),
                ("--explain", args.explain),
                ("--optimizer", args.optimizer is not None),
                ("--batch", args.batch is not None),
                ("--lengths", args.lengths is not None),
                ("--depth", args.depth != "auto"),
            )
            if on
        ]
        if others:
            raise TorchLstmParamsError(
                f"--budget answers a sizing question and prints no model summary; it does not combine with "
                f"{', '.join(others)}"
            )


def _factory_kwargs(text: str | None) -> dict[str, object] | None:
    if text is None:
        return None
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TorchLstmParamsError(f"--kwargs is not valid JSON: {exc}") from None
    if not isinstance(kwargs, dict):
        raise TorchLstmParamsError(f"--kwargs must be a JSON object, got {type(kwargs).__name__}")
    return kwargs


@contextlib.contextmanager
def _torch_warnings_as_notes(notes: list[str]) -> Iterator[None]:
    """Warnings raised while a model is built (torch's about dropout, say) become one-line notes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        first = (str(w.message).strip().splitlines() or [""])[0]
        notes.append(f"while building: {w.category.__name__}: {first}")


@dataclass
class _Model:
    """A summarized model and what the command line knows about how it was made."""

    summary: Summary
    notes: list[str] = field(default_factory=list)
    values: ValueScan | None = None  # a checkpoint file's own value scan
    no_values_because: str = ""  # why a value scan of this model finds nothing to read
    problems: tuple[Problem, ...] = ()  # what reading a checkpoint found (tensors that fit no torch layout, ...)
    buffers: tuple[str, ...] = ()  # a state dict's tensors taken as buffers
    trainable_recorded: bool = True  # False for a state dict, which does not record what trains


def _figures(args: argparse.Namespace) -> dict[str, Any]:
    return {"batch": args.batch, "seq_len": args.seq_len, "lengths": _lengths(args.lengths)}


def _rows_depth(args: argparse.Namespace) -> int | None:
    """An int --depth also cuts the report's rows (and the JSON); 'all' and 'auto' keep every row."""
    return args.depth if isinstance(args.depth, int) else None


def _from_expression(args: argparse.Namespace) -> _Model:
    notes: list[str] = []
    expression = read_expression(args.spec)
    notes.extend(expression.notes)
    layers = expression.num_layers
    with _torch_warnings_as_notes(notes):
        if _deep(expression, layers):
            assert isinstance(layers, int)
            stand_in = expression.build(num_layers=2)
            summary = summarize_stack(stand_in, layers, _rows_depth(args), **_figures(args))
            notes.append(
                f"num_layers={layers:,}: counted from the settings (closed forms); torch built a 2-layer stand-in "
                f"on meta, whose tensors were cross-checked (every layer above 0 has the shapes of its layer 1), "
                f"since building {layers:,} layers takes it time quadratic in the depth"
            )
        else:
            summary = summarize_tree(expression.build(), _rows_depth(args), **_figures(args))
    why = "a layer expression is built on the meta device: it has shapes, no values"
    return _Model(summary, notes, no_values_because=why)


def _deep(expression: LayerExpression, layers: object) -> bool:
    full_stack = expression.kind in ("LSTM", "GRU", "RNN")
    return full_stack and isinstance(layers, int) and not isinstance(layers, bool) and layers > STAND_IN_DEPTH


def _from_factory(args: argparse.Namespace) -> _Model:
    notes: list[str] = []
    kwargs = _factory_kwargs(args.kwargs)
    # A factory that prints must not corrupt --format json: its stdout goes to stderr while it runs.
    with contextlib.redirect_stdout(sys.stderr), _torch_warnings_as_notes(notes):
        model = build_factory(args.spec, kwargs, real=args.build_real)
    summary = summarize_tree(model, _rows_depth(args), **_figures(args))
    why = (
        "the factory was built on the meta device, so its tensors hold no values; --build-real builds it on the "
        "CPU so that they can be scanned"
    )
    return _Model(summary, notes, no_values_because=why)


def _trusted(spec: str) -> str:
    """What --trust-pickle lets torch.load import and run, as the safe reader lists it."""
    try:
        names = pickled_names(spec)
    except TorchLstmParamsError as exc:
        return f"torch.load(weights_only=False) will import and run whatever {spec} names (not listed: {exc})"
    if not names:
        return f"{spec} names no class or function beyond torch's tensor rebuilds; loaded with torch.load"
    shown = ", ".join(names[:12]) + (f" and {len(names) - 12:,} more" if len(names) > 12 else "")
    return f"torch.load(weights_only=False) imports and may run code of what {spec} names: {shown}"


def _from_checkpoint(args: argparse.Namespace, options: CheckOptions | None) -> _Model:
    if args.trust_pickle:
        print(f"torchlstm-params: --trust-pickle: {_trusted(args.spec)}", file=sys.stderr)
    notes: list[str] = []
    with _torch_warnings_as_notes(notes):
        checkpoint = read_checkpoint(args.spec, trust_pickle=args.trust_pickle)
        if args.buffers is not None and (checkpoint.module is not None or checkpoint.pickled is not None):
            raise TorchLstmParamsError("--buffers applies to a state dict; a pickled module records its own buffers")
        if checkpoint.found_under:
            notes.append(f"read from {checkpoint.format} file; state dict found under '{checkpoint.found_under}'")
        built = build_model(checkpoint, buffers=args.buffers)
    notes.extend(built.notes)
    summary = summarize_tree(built.model, _rows_depth(args), **_figures(args))
    if not built.trainable_recorded:
        summary = dataclasses.replace(summary, report=dataclasses.replace(summary.report, trainable_recorded=False))
    if summary.report.tokens is not None and summary.report.recurrent and checkpoint.module is None:
        notes.append(
            "a state dict stores no dropout or batch_first: the saved-for-backward figures take dropout=0 and "
            "batch_first=False"
        )
    values = None
    if options is not None and options.check_finite and checkpoint.module is None:
        try:
            with _torch_warnings_as_notes(notes):  # torch.load's own warnings (pickle protocol 4, ...)
                values = scan_file(args.spec, trust_pickle=args.trust_pickle, strip=checkpoint.found_under)
        except ScanRefused as exc:  # read safely for its shapes, but its values only torch.load could read
            counted = len(checkpoint.tensors) or sum(1 for _ in built.model.parameters())
            values = ValueScan(args.spec, 0, 0, 0, 0, {str(exc): counted}, ())
    return _Model(
        summary,
        notes,
        values,
        problems=built.problems,
        buffers=tuple(built.buffers),
        trainable_recorded=built.trainable_recorded,
    )


def _memory(report: Report, optimizer: str) -> tuple[TrainingMemory, int | None]:
    memory = training_memory(report, optimizer)
    saved = None if report.tokens is None else sum(e.saved.bytes for e in report.recurrent if e.saved is not None)
    return memory, saved


def _memory_line(memory: TrainingMemory, saved: int | None, trainable_recorded: bool = True) -> str:
    line = (
        f"training memory with {memory.optimizer}: weights {format_bytes(memory.weights)} + gradients "
        f"{format_bytes(memory.gradients)} + optimizer state {format_bytes(memory.optimizer_state)}"
    )
    if saved is None:
        line += f" = {format_bytes(memory.total)} (activations not included: give --batch and --seq-len)"
    else:
        line += (
            f" + recurrent activations saved for backward {format_bytes(saved)} = "
            f"{format_bytes(memory.total + saved)} (other layers' activations not included)"
        )
    if not trainable_recorded:
        line += "; a state dict does not record what trains: every floating-point parameter is taken as trainable"
    return line


def _memory_dict(memory: TrainingMemory, saved: int | None, trainable_recorded: bool = True) -> dict[str, Any]:
    return {
        "trainable_recorded": trainable_recorded,
        "optimizer": memory.optimizer,
        "weights": memory.weights,
        "gradients": memory.gradients,
        "optimizer_state": memory.optimizer_state,
        "master_weights": memory.master_weights,
        "total": memory.total,
        "recurrent_saved_activations": saved,
        "total_with_recurrent_saved_activations": None if saved is None else memory.total + saved,
        "not_included": "activations (give --batch and --seq-len)"
        if saved is None
        else "activations of non-recurrent layers",
    }


def _csv(report: Report, args: argparse.Namespace) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["module", "type", "depth", "params", "trainable", "kind", "formula_params", "tensor_params", "status"]
    if args.keras:
        header.append("keras_params")
    if args.explain:
        header.append("derivation")
    figures = report.tokens is not None
    if figures:
        header += ["tokens", "forward_macs", "training_macs", "forward_elementwise", "state_elements", "saved_bytes"]
    writer.writerow(header)
    recurrent = {e.name: e for e in report.recurrent}
    for row in report.rows:
        trainable = row.trainable_params if report.trainable_recorded else ""  # a state dict does not record it
        line: list[object] = [row.name, row.type, row.depth, row.params, trainable]
        e = recurrent.get(row.name)
        line += [e.spec.kind, e.formula_params, e.tensor_params, e.status] if e is not None else ["", "", "", ""]
        if args.keras:
            line.append("" if e is None or e.formula.keras_params is None else e.formula.keras_params)
        if args.explain:
            line.append("" if e is None else e.formula.derivation)
        if figures:
            if e is not None and e.compute is not None and e.state is not None:
                saved = "" if e.saved is None else e.saved.bytes
                c = e.compute
                line += [c.tokens, c.forward_macs, c.training_macs, c.forward_elementwise, e.state.elements, saved]
            else:
                line += ["", "", "", "", "", ""]
        writer.writerow(line)
    return out.getvalue().rstrip("\n")


def _note(message: str) -> None:
    print(f"torchlstm-params: note: {message}", file=sys.stderr)


def _exit_reason(report: Report, result: CheckResult | None, read: tuple[Problem, ...] = ()) -> str:
    reasons = []
    # Missing recurrent tensors are a mismatch whether or not the module could be rebuilt; tensors that
    # fit no torch layout (a custom cell, say) are a note, and a problem for --check.
    broken = sorted({p.code for p in read if p.code != "RNN_UNRECOGNISED"})
    if broken and (result is None or not result.failing):
        reasons.append(f"the checkpoint's recurrent tensors do not fit their layout ({', '.join(broken)})")
    bad = [e.name or "(root)" for e in report.recurrent if not e.matches]
    if bad:
        reasons.append(f"{len(bad)} recurrent module(s) do not match their formula ({', '.join(bad[:5])})")
    if result is not None and result.failing:
        codes = ", ".join(sorted({p.code for p in result.failing}))
        count = len(result.failing)
        strict = " (--strict: warnings fail too)" if result.strict and result.warnings else ""
        reasons.append(f"the sanity check failed: {count} problem{'s' if count != 1 else ''} ({codes}){strict}")
    return "; ".join(reasons)


def _is_foreign(args: argparse.Namespace) -> bool:
    return args.kind in (None, "checkpoint") and Path(args.spec).suffix.lower() in _FOREIGN_SUFFIXES


def _foreign_output(args: argparse.Namespace) -> tuple[str, tuple[str, ...], str]:
    """The Keras or ONNX file's report in the chosen format, its problems, and why shapes went unchecked."""
    if Path(args.spec).suffix.lower() == ".onnx":
        onnx_report = read_onnx_file(args.spec)
        if args.format == "json":
            return json.dumps(onnx_report.to_dict(), indent=2), onnx_report.problems, ""
        text = (
            onnx_file_csv(onnx_report) if args.format == "csv" else render_onnx_file(onnx_report, _FORMATS[args.format])
        )
        return text, onnx_report.problems, ""
    keras_report = read_keras_file(args.spec)
    skipped = keras_report.skipped
    if args.format == "json":
        return json.dumps(keras_report.to_dict(), indent=2), keras_report.problems, skipped
    text = (
        keras_file_csv(keras_report) if args.format == "csv" else render_keras_file(keras_report, _FORMATS[args.format])
    )
    return text, keras_report.problems, skipped


def _foreign(args: argparse.Namespace) -> int:
    """A Keras or ONNX file: its report; exit 1, saying why on stderr, when a stored shape does not fit."""
    for option in _TORCH_ONLY:
        if getattr(args, option) not in (None, False, [], "auto"):  # "auto": --depth left at its default
            flag = "--" + option.replace("_", "-")
            raise TorchLstmParamsError(f"{flag} applies to torch models and checkpoints, not to {args.spec}")
    text, problems, skipped = _foreign_output(args)
    if args.check and args.format not in ("json", "csv"):  # JSON has "problems", CSV a shape_check column
        if skipped:
            text += f"\nShape check: skipped ({skipped})"
        else:
            text += f"\nShape check: {len(problems)} mismatch(es)" if problems else "\nShape check: passed"
    _emit(text)
    if not problems:
        return 0
    count = f"{len(problems)} stored shape(s) do not fit their settings"
    print(f"torchlstm-params: exit 1: {count}; first: {problems[0]}", file=sys.stderr)
    return 1


def _run(args: argparse.Namespace) -> int:
    if _is_foreign(args):
        return _foreign(args)
    kind = args.kind or _kind(args.spec)
    _check_flags(args, kind)
    if args.budget is not None:
        return _budget(args)
    options = None
    if args.check:
        options = check_options("--check", allow=args.allow, allow_frozen=args.allow_frozen, strict=args.strict)
    if kind == "expression":
        made = _from_expression(args)
    elif kind == "factory":
        made = _from_factory(args)
    else:
        made = _from_checkpoint(args, options)
    report, notes = made.summary.report, made.notes
    result = None
    if options is not None:
        result = evaluate(made.summary, options, values=made.values)
        found = tuple(p for p in made.problems if p.code not in options.allow)  # what reading the file found
        if found:
            result = dataclasses.replace(result, problems=found + result.problems)
        scanned = result.values
        if made.no_values_because and scanned is not None and not scanned.complete and scanned.tensors == 0:
            # Nothing had values: say why in the command line's terms, and drop the empty scan's figures.
            ran = {**result.ran, "values": f"skipped: {made.no_values_because}"}
            result = dataclasses.replace(result, ran=ran, values=None)
    memory = None if args.optimizer is None else _memory(report, args.optimizer)
    if args.plot is not None:
        report.plot(args.plot)
        notes.append(f"picture of where the parameters live written to {args.plot}")
    if args.format == "json":
        data = dataclasses.replace(report, check=result).to_dict()
        data["notes"] = notes
        if not made.trainable_recorded:  # a state dict: which tensors are buffers was inferred
            data["buffers_inferred"] = list(made.buffers)
        data["training_memory"] = None if memory is None else _memory_dict(*memory, report.trainable_recorded)
        _emit(json.dumps(data, indent=2))
    elif args.format == "csv":
        _emit(_csv(report, args))
        left = [flag for flag, on in (("--optimizer", memory is not None), ("--check", result is not None)) if on]
        if notes:
            left.append("notes")
        if left:
            _note(f"--format csv holds one row per module; here on stderr instead: {', '.join(left)}")
        memory_lines = [_memory_line(*memory, report.trainable_recorded)] if memory else []
        for line in [*(f"Note: {n}" for n in notes), *memory_lines]:
            print(line, file=sys.stderr)
        if result is not None:
            for line in check_lines(result):
                print(line, file=sys.stderr)
    else:
        color = args.color == "always" or (args.color == "auto" and use_color(sys.stdout))
        text = report.render(
            _FORMATS[args.format],
            keras=args.keras,
            explain=args.explain,
            max_depth=args.depth,
            fold=not args.no_fold,
            color=color,
        )
        lines = [text, *(f"Note: {n}" for n in notes)]
        if memory is not None:
            lines.append(f"Note: {_memory_line(*memory, report.trainable_recorded)}")
        if result is not None:
            checked = check_lines(result)
            shade = {"passed": "ok", "failed": "error", "incomplete": "warning"}[result.status]
            lines += ["", paint(checked[0], shade, color), *checked[1:]]
        _emit("\n".join(lines))
    if result is not None and result.status == "incomplete" and args.format in ("json", "csv"):
        skipped = "; ".join(f"{part} skipped: {why}" for part, why in result.skipped.items())
        _note(f"the sanity check is not complete: {skipped}")
    reason = _exit_reason(report, result, made.problems)
    if reason:
        print(f"torchlstm-params: exit 1: {reason}", file=sys.stderr)
        return 1
    return 0


def _budget(args: argparse.Namespace) -> int:
    expression = read_expression(args.spec)
    settings = expression.settings
    kind = expression.kind
    if kind == "RNN" and settings.get("nonlinearity") == "relu":
        kind = "RNN_RELU"
    if "input_size" not in settings:
        raise TorchLstmParamsError(
            f"--budget needs the input size: e.g. '{expression.kind}(300)', got {excerpt(args.spec, 60)}"
        )
    notes = list(expression.notes)
    if "hidden_size" in settings:
        notes.append(f"hidden_size={settings['hidden_size']!r:.20} in the expression is what --budget replaces")
    proj = settings.get("proj_size", 0)
    shape: dict[str, Any] = {
        "num_layers": settings.get("num_layers", 1),
        "bias": settings.get("bias", True),
        "bidirectional": settings.get("bidirectional", False),
        "proj_size": proj,
    }
    smallest = proj + 1 if isinstance(proj, int) else 1
    spec = make_spec(kind, settings["input_size"], smallest, **shape)  # names the setting that is wrong
    fitted: dict[str, Any] = {
        "num_layers": spec.num_layers,
        "bidirectional": spec.bidirectional,
        "proj_size": spec.proj_size,
        "bias": spec.bias,
    }
    hidden = fit_hidden_size(spec.kind, spec.input_size, args.budget, **fitted)
    params = count_params(spec.kind, spec.input_size, hidden, **fitted)
    closest = [] if spec.is_cell else closest_configs(spec.kind, spec.input_size, args.budget, bias=spec.bias)[:6]
    answer = {
        "budget": args.budget,
        "kind": spec.kind,
        "input_size": spec.input_size,
        **fitted,
        "hidden_size": hidden,
        "params": params,
        "under_budget_by": args.budget - params,
        "closest": [
            {"num_layers": n, "bidirectional": b, "hidden_size": h, "params": p, "difference": p - args.budget}
            for n, b, h, p in closest
        ],
    }
    if args.format == "json":
        _emit(json.dumps({"budget": answer, "notes": notes}, indent=2))
        return 0
    if args.format == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["answer", "num_layers", "bidirectional", "hidden_size", "params", "difference"])
        writer.writerow(["largest", spec.num_layers, spec.bidirectional, hidden, params, params - args.budget])
        for row in answer["closest"]:
            writer.writerow(["closest", *row.values()])
        _emit(out.getvalue().rstrip("\n"))
        for note in notes:
            print(f"Note: {note}", file=sys.stderr)
        return 0
    settings_text = ", ".join(f"{k}={v}" for k, v in fitted.items())
    lines = [
        f"Budget {args.budget:,}: hidden_size={hidden} is the largest for {spec.kind}(input_size={spec.input_size}, "
        f"{settings_text}): {params:,} parameters ({args.budget - params:,} under)"
    ]
    if closest:
        lines.append("Closest configurations (layers, bidirectional, hidden_size, params):")
        for layers, bidi, h, p in closest:
            direction = "bidirectional" if bidi else "unidirectional"
            lines.append(f"  {layers} layer(s), {direction}, hidden {h}: {p:,} ({p - args.budget:+,})")
    lines.extend(f"Note: {note}" for note in notes)
    _emit("\n".join(lines))
    return 0


def _emit(text: str) -> None:
    """Write ``text`` and a newline to stdout now, so a failed write surfaces here and not at exit."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_to_devnull()
        raise _ReaderGone from None
    except OSError as exc:
        _stdout_to_devnull()
        raise _WriteFailed(str(exc)) from None


def _stdout_to_devnull() -> None:
    """Point file descriptor 1 at /dev/null, so the interpreter's flush at exit has nowhere to fail."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a test's capture): nothing to do
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


@contextlib.contextmanager
def _working_directory_importable() -> Iterator[None]:
    """The working directory on the import path while the command runs, as ``python -m`` has it."""
    cwd = os.getcwd()
    if "" in sys.path or cwd in sys.path:
        yield
        return
    sys.path.insert(0, cwd)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(cwd)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see :data:`EXIT_CODES`)."""
    args = _parser().parse_args(argv)
    try:
        with _working_directory_importable():
            return _run(args)
    except TorchLstmParamsError as exc:
        if args.debug:
            raise
        message = str(exc).strip().splitlines() or [type(exc).__name__]
        print(f"torchlstm-params: error: {message[0]}", file=sys.stderr)
        if len(message) > 1:
            print(f"  {message[1].strip()}", file=sys.stderr)
        return 2
    except _ReaderGone:
        return 141
    except _WriteFailed as exc:
        print(f"torchlstm-params: error: cannot write the output: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
