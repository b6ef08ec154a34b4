"""summarize() against the bare ``sum(p.numel() for p in model.parameters())``, same process.

Builds a 20,000-module model on the meta device (LSTM bidirectional+projected
multi-layer, GRU, RNN and Linear layers), times both alternately and prints
the ratio of medians. Target (issue 2): at most 1.5x.

    python -m benchmarks.bench_summarize [--modules N] [--repeats R]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from torchlstm_params import summarize


def mixed_model(modules: int) -> nn.Module:
    """``modules`` modules (root included): blocks of Sequential(LSTM, GRU, RNN, Linear)."""
    blocks = []
    with torch.device("meta"):
        for _ in range((modules - 1) // 5):
            blocks.append(
                nn.Sequential(
                    nn.LSTM(64, 128, num_layers=2, bidirectional=True, proj_size=32),
                    nn.GRU(64, 64),
                    nn.RNN(64, 64, nonlinearity="relu"),
                    nn.Linear(64, 64),
                )
            )
    return nn.Sequential(*blocks)


def baseline(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def timed(fn: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modules", type=int, default=20_001)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)

    model = mixed_model(args.modules)
    n_modules = sum(1 for _ in model.modules())
    n_tensors = sum(1 for _ in model.parameters())
    report = summarize(model)
    assert report.total_params == baseline(model), "summarize disagrees with torch"
    base, ours = [], []
    for _ in range(args.repeats):  # alternate, so drift hits both alike
        base.append(timed(lambda: baseline(model)))
        ours.append(timed(lambda: summarize(model)))
    b, s = statistics.median(base), statistics.median(ours)
    print(f"torch {torch.__version__}; {n_modules:,} modules, {n_tensors:,} tensors, {report.total_params:,} params")
    print(f"baseline sum(p.numel()) median {b * 1e3:.1f} ms, best {min(base) * 1e3:.1f} ms ({args.repeats} runs)")
    print(f"summarize(model)        median {s * 1e3:.1f} ms, best {min(ours) * 1e3:.1f} ms")
    print(
        f"ratio summarize / baseline: {s / b:.2f}x of medians, {min(ours) / min(base):.2f}x of bests (target <= 1.5x)"
    )


if __name__ == "__main__":
    main()
