"""``torchlstm-params SPEC``: summarize a layer expression or a model factory.

Exit codes: 0 every recurrent module matches its formula; 1 a mismatch;
2 bad usage or an input that cannot be read. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import __version__
from .build import build_expression, build_factory, is_expression
from .errors import TorchLstmParamsError
from .report import summarize

__all__ = ["main"]

_FORMATS = {"table": "simple", "github": "github", "markdown": "pipe", "json": ""}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torchlstm-params",
        description="Exact parameter counts for PyTorch models, with LSTM/GRU/RNN formulas cross-checked.",
        epilog='examples:  torchlstm-params "LSTM(10, 20, num_layers=2, bidirectional=True, proj_size=5)"\n'
        "           torchlstm-params mypkg.models:build --kwargs '{\"hidden\": 256}'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "spec", help="a layer expression such as 'GRU(64, 128)', or a factory 'package.module:callable'"
    )
    parser.add_argument("--kwargs", default=None, help="JSON object of keyword arguments for a factory")
    parser.add_argument("--format", choices=sorted(_FORMATS), default="table", help="output format (default: table)")
    parser.add_argument("--depth", type=int, default=None, help="module rows down to this depth (default: all)")
    parser.add_argument("--keras", action="store_true", help="add the Keras-convention count")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _run(args: argparse.Namespace) -> int:
    if is_expression(args.spec):
        if args.kwargs is not None:
            raise TorchLstmParamsError("--kwargs applies to a factory, not to a layer expression")
        model = build_expression(args.spec)
    else:
        kwargs = None
        if args.kwargs is not None:
            try:
                kwargs = json.loads(args.kwargs)
            except json.JSONDecodeError as exc:
                raise TorchLstmParamsError(f"--kwargs is not valid JSON: {exc}") from None
            if not isinstance(kwargs, dict):
                raise TorchLstmParamsError(f"--kwargs must be a JSON object, got {type(kwargs).__name__}")
        model = build_factory(args.spec, kwargs)
    report = summarize(model, max_depth=args.depth)
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.render(_FORMATS[args.format], keras=args.keras))
    return 0 if report.matches else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except TorchLstmParamsError as exc:
        if args.debug:
            raise
        print(f"torchlstm-params: error: {exc}", file=sys.stderr)
        return 2
