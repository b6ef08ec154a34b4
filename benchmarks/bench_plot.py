"""``report.plot(path)`` on the 20,000-module benchmark model: the picture, written as offline HTML.

Times building the figure from a report and writing the self-contained HTML page (plotly.js
inside), median of a few runs, with ``summarize`` timed apart. Target (issue 18): under 2 s.
Needs the plot extra (``pip install -c .ci/constraints.txt -e ".[plot]"``).

    python -m benchmarks.bench_plot [--modules N] [--repeats R] [--depth D] [--no-fold]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.bench_summarize import mixed_model
from torchlstm_params import summarize
from torchlstm_params.plot import DEPTH, nodes

TARGET_S = 2.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modules", type=int, default=20_001)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--depth", type=int, default=DEPTH)
    parser.add_argument("--no-fold", action="store_true", help="one box per module (aggregated below --depth)")
    args = parser.parse_args(argv)

    model = mixed_model(args.modules)
    start = time.perf_counter()
    report = summarize(model)
    summarize_s = time.perf_counter() - start
    boxes = nodes(report, max_depth=args.depth, fold=not args.no_fold)
    times = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.html"
        for _ in range(args.repeats):
            start = time.perf_counter()
            report.plot(path, max_depth=args.depth, fold=not args.no_fold)
            times.append(time.perf_counter() - start)
        size = path.stat().st_size
    median = statistics.median(times)
    print(f"torch {torch.__version__}; {len(report.rows):,} modules, {report.total_params:,} params")
    print(f"summarize(model) {summarize_s * 1e3:.0f} ms; {len(boxes.ids):,} boxes (depth {boxes.max_depth})")
    print(f"report.plot(html) median {median:.2f} s, best {min(times):.2f} s ({args.repeats} runs), {size:,} B file")
    verdict = "met" if median < TARGET_S else "NOT met"
    print(f"target < {TARGET_S:.0f} s: {verdict}")


if __name__ == "__main__":
    main()
