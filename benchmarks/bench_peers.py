"""summarize() side by side with the tools users would pick instead, in one process.

Peers: torchinfo ``summary(model, verbose=0)`` (no input), Lightning's ``ModelSummary(max_depth=-1)``,
fvcore ``parameter_count``, and the bare ``sum(p.numel() for p in model.parameters())`` as the
baseline. For every (tool, model): median wall time, ratio to the baseline, peak Python memory
added (tracemalloc, one separate run), and whether the total it reports equals the truth (or what
it says instead). Writes a markdown table to benchmarks/RESULTS.md (``--write``).

    pip install -c .ci/constraints.txt -e ".[bench]"
    python -m benchmarks.bench_peers --write
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import io
import platform
import pstats
import signal
import statistics
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch
from torch import nn

from benchmarks.bench_summarize import mixed_model
from torchlstm_params import summarize

RESULTS = Path(__file__).parent / "RESULTS.md"


def lstm_count(i: int, h: int, layers: int, directions: int = 1, proj: int = 0) -> int:
    """PyTorch's LSTM count by hand (RNN_FORMULAS.md), independent of the library."""
    r = proj or h
    return sum(directions * (4 * h * ((i if k == 0 else directions * r) + r) + 8 * h + proj * h) for k in range(layers))


def numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def deep_model(depth: int) -> nn.Module:
    model: nn.Module = nn.LSTM(16, 32)
    for _ in range(depth):
        model = nn.Sequential(model)
    return model


class SpeechModel(nn.Module):
    def __init__(self, vocab: int = 5000) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 256)
        self.encoder = nn.LSTM(256, 512, num_layers=5, bidirectional=True, proj_size=256)
        self.decoder = nn.ModuleList([nn.LSTMCell(512, 512), nn.LSTMCell(512, 512)])
        self.out = nn.Linear(512, vocab)


class TiedLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10_000, 400)
        self.rnn = nn.LSTM(400, 400, num_layers=3)
        self.out = nn.Linear(400, 10_000)
        self.out.weight = self.embed.weight


def models(scale: float) -> list[tuple[str, nn.Module, int, str]]:
    """(name, model, true total, how the truth was computed)."""
    n_modules = max(6, int(20_001 * scale))
    depth = max(5, int(5_000 * scale))
    out = []
    mixed = mixed_model(n_modules)
    out.append((f"1. {n_modules:,}-module mix (meta)", mixed, numel(mixed), "torch numel sum"))
    out.append((f"2. {depth:,}-deep nesting", deep_model(depth), lstm_count(16, 32, 1), "formula by hand"))
    layers = max(1, int(19 * scale))
    with torch.device("meta"):
        big = nn.LSTM(8192, 8192, num_layers=layers)
    out.append(
        (
            f"3. {lstm_count(8192, 8192, layers) / 1e9:.1f}B-param LSTM stack (meta)",
            big,
            lstm_count(8192, 8192, layers),
            "formula by hand",
        )
    )
    with torch.device("meta"):
        speech = SpeechModel()
    out.append(("4. speech model (meta)", speech, numel(speech), "torch numel sum"))
    float_lstm = nn.LSTM(64, 128, num_layers=2)
    truth = numel(float_lstm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(nn.Sequential(float_lstm), {nn.LSTM}, dtype=torch.qint8)
    out.append(("5a. dynamic-quantized LSTM", quantized, truth, "float model before quantize_dynamic"))
    normed = nn.LSTM(64, 128)
    torch.nn.utils.parametrizations.weight_norm(normed, "weight_hh_l0")
    out.append(("5b. weight-normed LSTM", normed, numel(normed), "torch numel sum (g included)"))
    tied = TiedLM()
    out.append(("5c. tied-weight LM", tied, numel(tied), "torch numel sum (shared once)"))
    lazy = nn.Sequential(nn.LSTM(8, 16), nn.LazyLinear(4))
    out.append(("5d. lazy model", lazy, lstm_count(8, 16, 1), "initialized part by hand, + 2 lazy tensors"))
    return out


def ours(model: nn.Module) -> int:
    return summarize(model).logical_params


def baseline(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def torchinfo_total(model: nn.Module) -> int:
    import torchinfo

    return int(torchinfo.summary(model, verbose=0).total_params)


def lightning_total(model: nn.Module) -> int:
    import lightning.pytorch as pl
    from lightning.pytorch.utilities.model_summary import ModelSummary  # type: ignore[attr-defined]

    class Wrapped(pl.LightningModule):
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

    return int(ModelSummary(Wrapped(model), max_depth=-1).total_parameters)


def fvcore_total(model: nn.Module) -> int:
    from fvcore.nn import parameter_count  # type: ignore[import-untyped]

    return int(parameter_count(model)[""])


TOOLS: list[tuple[str, Callable[[nn.Module], int]]] = [
    ("baseline numel sum", baseline),
    ("torchlstm_params", ours),
    ("torchinfo", torchinfo_total),
    ("Lightning ModelSummary", lightning_total),
    ("fvcore parameter_count", fvcore_total),
]


@dataclass
class Result:
    seconds: float | None
    peak_kib: float | None
    reported: str
    correct: bool


class TimedOut(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise TimedOut


def call(fn: Callable[[nn.Module], int], model: nn.Module, limit: float) -> int:
    """One call, stopped with TimedOut after ``limit`` seconds (SIGALRM: the main thread only)."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(model)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


TRACED_SLOWDOWN = 5  # tracemalloc slows Python code about this much: the peak-memory call gets this x the limit
BATCH_SECONDS = 0.05  # fast calls are timed in batches of at least this long, like timeit


def _batch(fn: Callable[[nn.Module], int], model: nn.Module, *, calls: int) -> int:
    """Picoseconds per call over ``calls`` back-to-back calls (an int, as ``call`` returns)."""
    start = time.perf_counter()
    for _ in range(calls):
        fn(model)
    return round((time.perf_counter() - start) * 1e12 / calls)


@dataclass
class _Plan:
    """One tool on one model: its answer, and how many calls make a timed batch."""

    fn: Callable[[nn.Module], int]
    value: int
    calls: int
    single: float
    per_call: list[float]


def _prepare(fn: Callable[[nn.Module], int], model: nn.Module, limit: float) -> _Plan | Result:
    """The tool's answer and batch size, or a Result saying how it failed."""
    try:
        value = call(fn, model, limit)  # the first call pays for imports and caches: not timed
        start = time.perf_counter()
        call(fn, model, limit)
        single = time.perf_counter() - start
    except TimedOut:
        return Result(None, None, f"gave up after {limit:.0f} s", False)
    except Exception as exc:  # noqa: BLE001 - a peer's failure is a result
        return Result(None, None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:60]}", False)
    # A call of a second or more is timed by that second call alone: more rounds would only add minutes.
    return _Plan(fn, value, max(1, int(BATCH_SECONDS / max(single, 1e-7))), single, [single] if single >= 1.0 else [])


def measure_all(
    tools: list[tuple[str, Callable[[nn.Module], int]]], model: nn.Module, truth: int, repeats: int, limit: float
) -> dict[str, Result]:
    """Every tool on ``model``: median seconds per call over ``repeats`` rounds of timed batches.

    The rounds go round-robin over the tools (tool A's batch, B's, C's, then A's again), so
    that a noisy moment on this shared machine falls on all of them alike rather than on one.
    A call under 50 ms is repeated back to back within its batch; a call of a second or more
    is timed once, after its first (untimed) call.
    """
    plans = {name: _prepare(fn, model, limit) for name, fn in tools}
    for _ in range(repeats):
        gc.collect()  # once a round: with torch and lightning imported a collection takes a good 0.1 s
        for plan in plans.values():
            if isinstance(plan, _Plan) and plan.single < 1.0:
                picoseconds = call(functools.partial(_batch, plan.fn, calls=plan.calls), model, limit * plan.calls)
                plan.per_call.append(picoseconds / 1e12)
    results: dict[str, Result] = {}
    for name, plan in plans.items():
        if isinstance(plan, Result):
            results[name] = plan
            continue
        tracemalloc.start()  # counts only what the call allocates: older garbage is not in the peak
        try:
            call(plan.fn, model, TRACED_SLOWDOWN * limit)
            peak: float | None = tracemalloc.get_traced_memory()[1] / 1024
        except TimedOut:  # tracing slows a call several times over; no peak rather than no row
            peak = None
        finally:
            tracemalloc.stop()
        results[name] = Result(statistics.median(plan.per_call), peak, f"{plan.value:,}", plan.value == truth)
    return results


def profile_summary(model: nn.Module) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    summarize(model)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(6)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip() and ("(" in ln or "ncalls" in ln)]
    return "\n".join(lines[:8])


def phase_breakdown(model: nn.Module, repeats: int) -> str:
    """Median ms of each phase of ``summarize`` on ``model``, timed apart, next to the baseline.

    cProfile's own times inflate code made of many small calls; these are plain
    wall times (the collector runs as it does for any caller).
    """
    from collections import deque
    from operator import attrgetter

    from torchlstm_params.registry import default_registry
    from torchlstm_params.summary import _detect_all
    from torchlstm_params.tally import tally
    from torchlstm_params.walk import walk

    tree = walk(model)
    recurrent = _detect_all(tree, default_registry)
    formulas = {i: f for i, (_, f) in recurrent.items()}
    inside = [p for i in recurrent for p in tree.modules[i]._parameters.values() if p is not None]
    metadata = attrgetter("shape", "requires_grad", "dtype")

    def median_ms(fn: Callable[[], object]) -> float:
        times = []
        gc.collect()
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e3

    phases = [
        ("baseline: sum(p.numel() for p in model.parameters())", median_ms(lambda: baseline(model))),
        ("summarize, whole call", median_ms(lambda: summarize(model))),
        ("  walk: the module tree, iteratively (names, depths, parents)", median_ms(lambda: walk(model))),
        ("  detect: recurrent settings and formulas", median_ms(lambda: _detect_all(tree, default_registry))),
        ("  tally: counts, dtypes, sharing, subtree sums", median_ms(lambda: tally(tree, formulas))),
        (
            f"    of which: reading shape, requires_grad and dtype of the {len(inside):,} recurrent tensors",
            # read and dropped, as the tally drops them: a kept list of 112,000 tuples would set off
            # full collections over the whole heap, which the tally never pays
            median_ms(lambda: deque(map(metadata, inside), maxlen=0)),
        ),
    ]
    width = max(len(name) for name, _ in phases)
    return "\n".join(f"{name:<{width}}  {ms:8.1f} ms" for name, ms in phases)


def versions() -> str:
    names = ("torch", "torchinfo", "lightning", "fvcore", "tabulate")
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def _milliseconds(seconds: float) -> str:
    """Three significant digits at least: 213.4, 0.0412."""
    ms = seconds * 1e3
    return f"{ms:.1f}" if ms >= 10 else f"{ms:.3g}" if ms >= 0.01 else f"{ms:.2e}"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="shrink the big models (smoke tests)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--limit", type=float, default=20.0, help="seconds before a tool's call is given up")
    parser.add_argument("--write", action="store_true", help=f"write {RESULTS.name}")
    args = parser.parse_args(argv)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1_000))
    rows = []
    first_model = None
    for name, model, truth, how in models(args.scale):
        first_model = first_model or model
        results = measure_all(TOOLS, model, truth, args.repeats, args.limit)
        base = results["baseline numel sum"].seconds
        for tool, r in results.items():
            ratio = "" if r.seconds is None or base is None else f"{r.seconds / base:.2f}x"
            time_ms = "failed" if r.seconds is None else _milliseconds(r.seconds)
            peak = "" if r.peak_kib is None else f"{r.peak_kib:,.0f}"
            verdict = "yes" if r.correct else "**no**"
            rows.append(f"| {name} | {tool} | {time_ms} | {ratio} | {peak} | {r.reported} | {verdict} |")
        rows.append(f"| {name} | *truth* | | | | {truth:,} | {how} |")
        print(f"done: {name}", file=sys.stderr)
    assert first_model is not None
    command = "python -m benchmarks.bench_peers" + (" --write" if args.write else "")
    text = "\n".join(
        [
            "# torchlstm_params against its peers",
            "",
            f"Command: `{command}` (scale {args.scale}, median of {args.repeats} timed batches per tool and "
            f"model, in rounds that go round-robin over the tools; a call under {BATCH_SECONDS * 1e3:.0f} ms is "
            "repeated back to back within a batch of at least that long).",
            f"Machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} torch threads, Python {platform.python_version()}.",
            f"Packages: {versions()}.",
            "",
            "Time is the median wall time of one call (the first call, which pays for imports, is not timed); "
            "the ratio is against the bare numel sum of the same "
            "model in the same run; peak is the Python memory (tracemalloc) one call allocates, in KiB. "
            "A peer that raises is reported with its exception.",
            "",
            "| model | tool | median ms | vs baseline | peak KiB | reported total | equals truth |",
            "|---|---|---:|---:|---:|---:|---|",
            *rows,
            "",
            "Where the time of `summarize` goes on model 1: each phase timed apart (median of "
            f"{max(args.repeats, 3)} runs; the collector runs as for any caller; the rest of the whole call is "
            "the recurrent entries, the module rows' columns and the report):",
            "",
            "```text",
            phase_breakdown(first_model, max(args.repeats, 3)),
            "```",
            "",
            "And by function (cProfile, top own times; its overhead inflates the many small calls):",
            "",
            "```text",
            profile_summary(first_model),
            "```",
        ]
    )
    if args.write:
        RESULTS.write_text(text + "\n", encoding="utf-8")
    print(text)
    return text


if __name__ == "__main__":
    main()
