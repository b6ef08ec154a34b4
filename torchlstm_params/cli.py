"""``torchlstm-params SPEC``: summarize a layer expression, a model factory, a checkpoint, or a Keras/ONNX file.

``.keras``, ``.h5`` and ``.onnx`` files go to their readers (:mod:`.keras_file`, :mod:`.onnx_file`):
each recurrent layer's Keras (or ONNX) count, its PyTorch equivalent and count, and the stored
shapes cross-checked against the settings.

Exit codes: 0 every recurrent module is consistent (and the check passed);
1 a mismatch or a failed check; 2 bad usage or an input that cannot be read.
Errors are one or two lines on stderr, never a traceback unless ``--debug``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .checkpoint import StandIn, build_model, pickled_names, read_checkpoint
from .display import use_color
from .errors import Problem, TorchLstmParamsError
from .file_render import keras_file_csv, onnx_file_csv, render_keras_file, render_onnx_file
from .formulas import count_params
from .keras_file import read_keras_file
from .memory import OPTIMIZER_STATES, training_memory
from .onnx_file import read_onnx_file
from .render import DEFAULT_DEPTH, format_bytes, paint
from .results import Report
from .sanity import check_options, problems_in
from .sizing import closest_configs, fit_hidden_size
from .spec import build_expression, build_factory, is_expression
from .summary import summarize_tree

__all__ = ["main"]

_FORMATS = {"table": "simple", "github": "github", "markdown": "pipe", "json": "", "csv": ""}
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".tar")
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
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torchlstm-params",
        description="Exact parameter counts for PyTorch models, with LSTM/GRU/RNN formulas cross-checked.",
        epilog='examples:  torchlstm-params "LSTM(512, 1024, num_layers=3, bidirectional=True)" --keras\n'
        "           torchlstm-params mypkg.models:build --kwargs '{\"hidden\": 256}'\n"
        "           torchlstm-params checkpoint.ckpt --check --format github\n"
        "           torchlstm-params model.keras   (also legacy .h5 and .onnx files)\n"
        "exit codes: 0 consistent, 1 mismatch or failed check, 2 bad usage or unreadable input",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "spec", help="a layer expression ('GRU(64, 128)'), a factory 'package.module:callable', or a file"
    )
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument(
        "--expression", action="store_const", const="expression", dest="kind", help="SPEC is a layer expression"
    )
    kind.add_argument("--factory", action="store_const", const="factory", dest="kind", help="SPEC is a model factory")
    kind.add_argument("--checkpoint", action="store_const", const="checkpoint", dest="kind", help="SPEC is a file")
    parser.add_argument("--kwargs", default=None, help="JSON object of keyword arguments for a factory")
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
    parser.add_argument("--check", action="store_true", help="run the sanity check; a problem sets exit code 1")
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
        "--budget", type=int, default=None, help="a layer expression: largest hidden size within this count"
    )
    parser.add_argument(
        "--buffers",
        default=None,
        metavar="REGEX",
        help="a state dict's tensors whose name matches REGEX (re.search) are buffers, instead of the "
        "conventional buffer names (integer/bool tensors are buffers either way)",
    )
    parser.add_argument("--trust-pickle", action="store_true", help="load pickled objects from a checkpoint you trust")
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


def _kind(spec: str) -> str:
    if Path(spec).exists():  # an existing file wins: "LSTM_FCN (1).pt" is a download, not an expression
        return "checkpoint"
    if is_expression(spec):
        return "expression"
    if Path(spec).suffix in _CHECKPOINT_SUFFIXES or "/" in spec or "\\" in spec:
        return "checkpoint"
    return "factory"


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


def _model(args: argparse.Namespace, kind: str) -> StandIn:
    if args.kwargs is not None and kind != "factory":
        raise TorchLstmParamsError(f"--kwargs applies to a factory, not to a {kind}")
    for flag, value in (("--trust-pickle", args.trust_pickle), ("--buffers", args.buffers is not None)):
        if value and kind != "checkpoint":
            raise TorchLstmParamsError(f"{flag} applies to a checkpoint file, not to a {kind}")
    if kind == "expression":
        return StandIn(build_expression(args.spec))
    if kind == "factory":
        return StandIn(build_factory(args.spec, _factory_kwargs(args.kwargs)))
    if args.trust_pickle:
        print(f"torchlstm-params: --trust-pickle: {_trusted(args.spec)}", file=sys.stderr)
    checkpoint = read_checkpoint(args.spec, trust_pickle=args.trust_pickle)
    if args.buffers is not None and (checkpoint.module is not None or checkpoint.pickled is not None):
        raise TorchLstmParamsError("--buffers applies to a state dict; a pickled module records its own buffers")
    built = build_model(checkpoint, buffers=args.buffers)
    where = [f"read from {checkpoint.format} file; state dict found under '{checkpoint.found_under}'"]
    notes = where if checkpoint.found_under else []
    return dataclasses.replace(built, notes=(*notes, *built.notes))


def _csv(report: Report) -> str:
    """One row per module; the trainable column is empty where the file does not record what trains."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["module", "type", "depth", "params", "trainable", "kind", "formula_params", "tensor_params", "status"]
    )
    recurrent = {e.name: e for e in report.recurrent}
    for row in report.rows:
        e = recurrent.get(row.name)
        extra = [e.spec.kind, e.formula_params, e.tensor_params, e.status] if e is not None else ["", "", "", ""]
        trainable = row.trainable_params if report.trainable_recorded else ""
        writer.writerow([row.name, row.type, row.depth, row.params, trainable, *extra])
    return out.getvalue().rstrip("\n")


def _lengths(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise TorchLstmParamsError(f"--lengths must be comma-separated integers, got {text!r}") from None


def _budget_lines(args: argparse.Namespace, report: Report, budget: int) -> list[str]:
    entries = report.recurrent
    if not is_expression(args.spec) or len(entries) != 1:
        raise TorchLstmParamsError("--budget applies to a layer expression such as 'LSTM(300, 0)'")
    spec = entries[0].spec
    kind = spec.kind
    h = fit_hidden_size(
        kind,
        spec.input_size,
        budget,
        spec.num_layers,
        bidirectional=spec.bidirectional,
        proj_size=spec.proj_size,
        bias=spec.bias,
    )
    count = count_params(
        kind,
        spec.input_size,
        h,
        spec.num_layers,
        bias=spec.bias,
        bidirectional=spec.bidirectional,
        proj_size=spec.proj_size,
    )
    lines = [f"Budget {budget:,}: largest hidden_size with these settings is {h} ({count:,} parameters)"]
    if not spec.is_cell:
        lines.append("Closest configurations (layers, bidirectional, hidden_size, params):")
        for layers, bidi, hidden, params in closest_configs(kind, spec.input_size, budget, bias=spec.bias)[:6]:
            direction = "bidirectional" if bidi else "unidirectional"
            lines.append(f"  {layers} layer(s), {direction}, hidden {hidden}: {params:,} ({params - budget:+,})")
    return lines


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
    """A Keras or ONNX file: its report; exit 1 when a stored shape does not fit its settings."""
    for option in _TORCH_ONLY:
        if getattr(args, option) not in (None, False, "auto"):  # "auto": --depth left at its default
            flag = "--" + option.replace("_", "-")
            raise TorchLstmParamsError(f"{flag} applies to torch models and checkpoints, not to {args.spec}")
    text, problems, skipped = _foreign_output(args)
    if args.check and args.format not in ("json", "csv"):  # JSON has "problems", CSV a shape_check column
        if skipped:
            text += f"\nShape check: skipped ({skipped})"
        else:
            text += f"\nShape check: {len(problems)} mismatch(es)" if problems else "\nShape check: passed"
    print(text)
    if not problems:
        return 0
    if args.check:
        count = f"{len(problems)} stored shape(s) do not fit their settings"
        print(f"torchlstm-params: check failed: {count}; first: {problems[0]}", file=sys.stderr)
    return 1


def _run(args: argparse.Namespace) -> int:
    if _is_foreign(args):
        return _foreign(args)
    kind = args.kind or _kind(args.spec)
    built = _model(args, kind)
    notes = list(built.notes)
    lengths = _lengths(args.lengths)
    depth = args.depth if isinstance(args.depth, int) else None  # an int also cuts the report's rows (and the JSON)
    summary = summarize_tree(built.model, max_depth=depth, batch=args.batch, seq_len=args.seq_len, lengths=lengths)
    report = summary.report
    if not built.trainable_recorded:
        report = dataclasses.replace(report, trainable_recorded=False)
        summary = dataclasses.replace(summary, report=report)
    if report.tokens is not None and report.recurrent and kind == "checkpoint":
        notes.append(
            "a state dict stores no dropout or batch_first: the saved-for-backward figures take dropout=0 and "
            "batch_first=False"
        )
    if args.optimizer is not None:
        memory = training_memory(report, args.optimizer)
        line = (
            f"training memory with {memory.optimizer}: weights {format_bytes(memory.weights)} + gradients "
            f"{format_bytes(memory.gradients)} + optimizer state {format_bytes(memory.optimizer_state)}"
        )
        if report.tokens is None:
            line += f" = {format_bytes(memory.total)} (activations not included: give --batch and --seq-len)"
        else:
            saved = sum(e.saved.bytes for e in report.recurrent if e.saved is not None)
            line += (
                f" + recurrent activations saved for backward {format_bytes(saved)} = "
                f"{format_bytes(memory.total + saved)} (other layers' activations not included)"
            )
        if not report.trainable_recorded:
            line += "; a state dict does not record what trains: every floating-point parameter is taken as trainable"
        notes.append(line)
    if args.budget is not None:
        notes.extend(_budget_lines(args, report, args.budget))
    if args.plot is not None:
        report.plot(args.plot)
        notes.append(f"picture of where the parameters live written to {args.plot}")
    problems: tuple[Problem, ...] = ()
    if args.check:
        problems = built.problems + problems_in(summary, check_options("--check"))
    # Missing recurrent tensors are a mismatch whether or not the module could be rebuilt;
    # tensors that fit no torch layout (a custom cell, say) are a note, and a problem for --check.
    broken = any(p.code != "RNN_UNRECOGNISED" for p in built.problems)
    if args.format == "json":
        data = report.to_dict()
        data["notes"] = notes
        if not built.trainable_recorded:  # a state dict: which tensors are buffers was inferred
            data["buffers_inferred"] = list(built.buffers)
        if args.check:
            data["problems"] = [str(p) for p in problems]
        print(json.dumps(data, indent=2))
    elif args.format == "csv":
        print(_csv(report))
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
        if args.check:
            if problems:
                lines.append(paint(f"Sanity check: {len(problems)} problem(s)", "error", color))
            else:
                lines.append(paint("Sanity check: passed", "ok", color))
            lines.extend(f"  {p}" for p in problems)
        print("\n".join(lines))
    return 1 if problems or broken or not report.matches else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except TorchLstmParamsError as exc:
        if args.debug:
            raise
        message = str(exc).strip().splitlines()
        print(f"torchlstm-params: error: {message[0]}", file=sys.stderr)
        if len(message) > 1:
            print(f"  {message[1].strip()}", file=sys.stderr)
        return 2
