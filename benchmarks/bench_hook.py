"""Steady-state forward time with install_sanity_hook() against a model that never had one.

Two identical LSTM models; one gets the sanity hook and its first call (which
runs the check and removes the hook). Then both are timed alternately and the
ratio of medians is printed. Target (issue 4): 1.00x, within noise.

    python -m benchmarks.bench_hook [--repeats R]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch import nn

from torchlstm_params import install_sanity_hook


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    plain = nn.LSTM(64, 128, num_layers=2, batch_first=True)
    hooked = copy.deepcopy(plain)
    x = torch.randn(8, 16, 64)
    handle = install_sanity_hook(hooked, expect={"": {"hidden_size": 128}})
    first = time.perf_counter()
    with torch.no_grad():
        hooked(x)  # runs the check, removes the hook
    first = time.perf_counter() - first
    assert handle.id not in hooked._forward_pre_hooks
    times: dict[str, list[float]] = {"plain": [], "hooked": []}
    with torch.no_grad():
        for _ in range(10):
            plain(x), hooked(x)
        for _ in range(args.repeats):
            for name, model in (("plain", plain), ("hooked", hooked)):
                start = time.perf_counter()
                model(x)
                times[name].append(time.perf_counter() - start)
    p, h = statistics.median(times["plain"]), statistics.median(times["hooked"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; LSTM(64, 128, 2 layers), input (8, 16, 64)")
    print(f"first call with the hook (runs check): {first * 1e3:.2f} ms")
    print(f"steady state, never hooked: median {p * 1e6:.0f} us; after the hook: median {h * 1e6:.0f} us")
    print(f"ratio after-hook / never-hooked: {h / p:.2f}x (target 1.00x within noise)")


if __name__ == "__main__":
    main()
