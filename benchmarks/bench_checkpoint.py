"""Checkpoint inspection against a plain torch.load, on a >= 1 GB recurrent state dict.

Writes one large LSTM stack's state dict with torch.save and with safetensors,
then, each in a fresh subprocess (so peak memory is the method's own):

- baseline: ``torch.load(path)`` (reads every byte);
- ours: ``read_checkpoint`` + ``build_model`` + ``summarize`` (reads names,
  shapes and dtypes; storage stays mapped and untouched).

Prints the time ratio (target < 10% of torch.load) and the peak resident
memory the inspection adds after imports, as a share of the file size
(target < 15%); the whole process's peak is printed too (importing torch
alone takes a few hundred MiB, whatever the file).

A third file is the same LSTM pickled whole (``torch.save(model)``), read by
the safe reader (``unpickle.read_pickled`` + ``pickled.find_module``, which
imports and runs nothing and never reads tensor data) against
``torch.load(weights_only=False)``; target: peak memory added < 15% of the
file size.

    python -m benchmarks.bench_checkpoint [--layers N] [--hidden H]
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
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
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
    model, _ = build_model(read_checkpoint(path))
    total = summarize(model).total_params
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": elapsed, "added_kib": peak - base, "peak_kib": peak, "total": total}))
"""


def measure(method: str, path: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, method, str(path)], capture_output=True, text=True, check=True, timeout=600
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=2048)
    args = parser.parse_args(argv)
    with torch.device("meta"):
        model = nn.LSTM(args.hidden, args.hidden, num_layers=args.layers)
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
        print(f"torch {torch.__version__}; LSTM({args.hidden}, {args.hidden}, num_layers={args.layers})")
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


if __name__ == "__main__":
    main()
