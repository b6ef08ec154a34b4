"""Checkpoint inspection against a plain torch.load: a >= 1 GB recurrent state dict, and many small tensors.

1. Large: one large LSTM stack's state dict, written with torch.save and with
   safetensors. Target: inspecting takes < 10% of torch.load's time and adds
   < 15% of the file size in peak memory.
2. Many small tensors (``--many``, default 20,000 and 100,000 tensors): blocks of
   an ``LSTM(8, 8)`` and a ``Linear(8, 8)``, written with torch.save. Target:
   inspecting costs less than a plain torch.load of the same file, in time and
   in peak memory, at every size.
3. Whole model: the large LSTM pickled whole (``torch.save(model)``), read by
   the safe reader (``unpickle.read_pickled`` + ``pickled.find_module``, which
   imports and runs nothing and never reads tensor data) against
   ``torch.load(weights_only=False)``. Target: peak memory added < 15% of the
   file size.

Each method runs in a fresh subprocess (so peak memory is the method's own):

- baseline: ``torch.load(path)`` (reads every byte);
- ours: ``read_checkpoint`` + ``build_model`` + ``summarize`` (reads names,
  shapes and dtypes; storage stays mapped and untouched).

The whole process's peak is printed too (importing torch alone takes a few
hundred MiB, whatever the file).

    python -m benchmarks.bench_checkpoint [--layers N] [--hidden H] [--many 20000,100000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

_CHILD = r"""
import json, resource, sys, time
import torch
method, path = sys.argv[1], sys.argv[2]
from torchlstm_params.checkpoint import build_model, read_checkpoint
from torchlstm_params.pickled import find_module
from torchlstm_params.unpickle import read_pickled
from torchlstm_params import summarize


def memory_kib(field):
    # VmRSS (now) or VmHWM (peak) from /proc; elsewhere the peak from getrusage
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(field))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


try:  # reset the peak to the current size, so that the import's own transient peak does not hide the method's
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
except OSError:
    pass
base = memory_kib("VmRSS:")
start = time.perf_counter()
if method == "torch.load":
    state = torch.load(path, map_location="cpu")
    total = sum(t.numel() for t in state.values())
elif method == "torch.load-module":
    total = sum(p.numel() for p in torch.load(path, map_location="cpu", weights_only=False).parameters())
elif method == "safe-read":
    tree, _ = find_module(read_pickled(path).root)
    total = sum(t.numel for _, t in tree.named_parameters())
else:
    total = summarize(build_model(read_checkpoint(path)).model).total_params
elapsed = time.perf_counter() - start
peak = memory_kib("VmHWM:")
print(json.dumps({"seconds": elapsed, "added_kib": peak - base, "peak_kib": peak, "total": total}))
"""


def measure(method: str, path: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, method, str(path)], capture_output=True, text=True, check=True, timeout=600
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def many_small(tensors: int, path: Path) -> int:
    """Write a state dict of about ``tensors`` small tensors (LSTM + Linear blocks); return its element count."""
    state: dict[str, torch.Tensor] = {}
    blocks = -(-tensors // 6)
    with torch.device("meta"):
        block = nn.ModuleDict({"rnn": nn.LSTM(8, 8), "out": nn.Linear(8, 8)})
    shapes = {name: tuple(t.shape) for name, t in block.state_dict().items()}
    for i in range(blocks):
        for name, shape in shapes.items():
            state[f"blocks.{i}.{name}"] = torch.zeros(shape)
    torch.save(state, path)
    return sum(t.numel() for t in state.values())


def bench_many(sizes: list[int]) -> None:
    for tensors in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "many.pt"
            total = many_small(tensors, path)
            base = measure("torch.load", path)
            ours = measure("inspect", path)
            assert ours["total"] == base["total"] == total, "inspection and torch.load disagree on the count"
            count = -(-tensors // 6) * 6
            # Peak memory: the whole process's, reset after imports where Linux allows (both import the same).
            print(
                f"many small tensors: {count:,} tensors, {path.stat().st_size / 2**20:.1f} MiB; "
                f"torch.load {base['seconds']:.2f} s, peak {base['peak_kib'] / 1024:.0f} MiB "
                f"(+{base['added_kib'] / 1024:.0f} MiB after imports); inspect {ours['seconds']:.2f} s, "
                f"peak {ours['peak_kib'] / 1024:.0f} MiB (+{ours['added_kib'] / 1024:.0f} MiB after imports)"
            )
            print(
                f"  time ratio {ours['seconds'] / base['seconds']:.2f}, peak memory ratio "
                f"{ours['peak_kib'] / base['peak_kib']:.2f}, added after imports ratio "
                f"{ours['added_kib'] / max(base['added_kib'], 1):.2f} (target: all < 1.00, inspect below torch.load)"
            )


def bench_large(layers: int, hidden: int) -> None:
    with torch.device("meta"):
        model = nn.LSTM(hidden, hidden, num_layers=layers)
    model = model.to_empty(device="cpu")  # values are irrelevant here: skip initialisation
    state = {k: v.detach() for k, v in model.state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        files = {"torch.save": Path(tmp) / "lstm.pt", "safetensors": Path(tmp) / "lstm.safetensors"}
        torch.save(state, files["torch.save"])
        from safetensors.torch import save_file

        save_file(state, str(files["safetensors"]))
        whole = Path(tmp) / "lstm-model.pt"
        torch.save(model, whole)
        del model, state
        print(f"torch {torch.__version__}; LSTM({hidden}, {hidden}, num_layers={layers})")
        total_share = "whole-process peak / file size"
        for label, path in files.items():
            size = path.stat().st_size
            base = measure("torch.load", files["torch.save"])
            ours = measure("inspect", path)
            assert ours["total"] == base["total"], "inspection and torch.load disagree on the count"
            print(
                f"{label}: {size / 2**30:.2f} GiB, {int(ours['total']):,} params; "
                f"torch.load {base['seconds'] * 1e3:.0f} ms, +{base['added_kib'] / 2**20:.2f} GiB peak; "
                f"inspect {ours['seconds'] * 1e3:.1f} ms, +{ours['added_kib'] / 1024:.1f} MiB peak "
                f"(whole process {ours['peak_kib'] / 1024:.0f} MiB, of which importing torch is most)"
            )
            print(
                f"  time ratio {ours['seconds'] / base['seconds']:.3f} (target < 0.10); "
                f"peak memory added / file size {ours['added_kib'] * 1024 / size:.3f} (target < 0.15); "
                f"{total_share} {ours['peak_kib'] * 1024 / size:.3f}"
            )
        whole_model(whole)


def whole_model(path: Path) -> None:
    """The whole-model pickle: the safe reader against torch.load trusting the file."""
    size = path.stat().st_size
    base = measure("torch.load-module", path)
    ours = measure("safe-read", path)
    assert ours["total"] == base["total"], "the safe reader and torch.load disagree on the count"
    print(
        f"torch.save(model) whole-model pickle: {size / 2**30:.2f} GiB, {int(ours['total']):,} params; "
        f"torch.load {base['seconds'] * 1e3:.0f} ms, +{base['added_kib'] / 2**20:.2f} GiB peak; "
        f"safe read {ours['seconds'] * 1e3:.1f} ms, +{ours['added_kib'] / 1024:.1f} MiB peak"
    )
    print(
        f"  safe read: time ratio {ours['seconds'] / base['seconds']:.3f}; "
        f"peak memory added / file size {ours['added_kib'] * 1024 / size:.3f} (target < 0.15)"
    )
    full = measure("inspect", path)  # what the command line does: read safely, stand-in tree, summarize
    assert full["total"] == base["total"], "inspection and torch.load disagree on the count"
    print(
        f"  inspect (read + stand-in + summarize) {full['seconds'] * 1e3:.1f} ms, +{full['added_kib'] / 1024:.1f} "
        f"MiB peak: time ratio {full['seconds'] / base['seconds']:.3f}; peak memory added / file size "
        f"{full['added_kib'] * 1024 / size:.3f} (target < 0.15)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument(
        "--many",
        default="20000,100000",
        help="comma-separated tensor counts for the many-small-tensors case ('' skips)",
    )
    args = parser.parse_args(argv)
    bench_large(args.layers, args.hidden)
    bench_many([int(n) for n in args.many.split(",") if n])


if __name__ == "__main__":
    main()
