"""Value scans: exact NaN/Inf counts across chunk borders, tied tensors once, real files, bounded memory."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from torch import nn

from torchlstm_params.scan import ScanRefused, count_non_finite, scan_file, scan_tensors


def test_counts_are_exact_across_chunk_borders():
    values = torch.zeros(1000)
    nan_at, inf_at = [0, 6, 7, 999], [5, 500, 998]
    values[nan_at] = float("nan")
    values[inf_at] = float("inf")
    for chunk in (1, 3, 7, 1000, 5000):
        assert count_non_finite(values, chunk) == (4, 3)
        assert count_non_finite(values.view(10, 100).t(), chunk) == (4, 3)  # not contiguous: rows at a time


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64, torch.float8_e5m2])
def test_every_floating_dtype(dtype):
    values = torch.tensor([1.0, float("nan"), float("-inf"), 2.0]).to(dtype)
    assert count_non_finite(values, 3) == (1, 1)


def test_live_scan_skips_meta_and_lazy_and_counts_integers_apart():
    real = torch.ones(3, 4)
    with torch.device("meta"):
        meta = torch.empty(5)
    scan = scan_tensors(
        [
            ("a.w", real),
            ("b.w", meta),
            ("c.w", nn.UninitializedParameter()),
            ("d.steps", torch.zeros(2, dtype=torch.int64)),
        ]
    )
    assert (scan.tensors, scan.elements, scan.bytes, scan.not_floating) == (1, 12, 48, 1)
    assert dict(scan.skipped) == {"on the meta device (no values)": 1, "uninitialized (lazy), no values yet": 1}
    assert not scan.complete


def test_a_torch_file_is_scanned_through_its_map_and_tied_tensors_once(tmp_path):
    model = nn.Sequential(nn.Embedding(7, 4), nn.Linear(4, 7))
    embedding, linear = model[0], model[1]
    assert isinstance(embedding, nn.Embedding) and isinstance(linear, nn.Linear)
    linear.weight = embedding.weight  # tied: one storage, two names
    with torch.no_grad():
        embedding.weight[2, 3] = float("nan")
    path = tmp_path / "tied.ckpt"
    torch.save({"state_dict": model.state_dict(), "epoch": 1}, path)
    scan = scan_file(path, strip="state_dict")
    assert scan.mapped
    assert (scan.tensors, scan.elements) == (2, 7 * 4 + 7)  # the tied weight once, plus the bias
    assert [(n.name, n.nan, n.inf, n.numel) for n in scan.non_finite] == [("0.weight", 1, 0, 28)]


def test_a_legacy_torch_file_says_it_was_read_whole(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.tensor([float("inf"), 0.0])}, path, _use_new_zipfile_serialization=False)
    scan = scan_file(path)
    assert not scan.mapped
    assert [(n.name, n.inf) for n in scan.non_finite] == [("w", 1)]
    assert "read whole, it cannot be memory-mapped" in scan.describe()


def test_a_safetensors_file_is_viewed_in_place(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch", reason="the safetensors package is not installed")
    tensors = {
        "rnn.weight_ih_l0": torch.randn(8, 3).to(torch.bfloat16),
        "rnn.bias_ih_l0": torch.tensor([0.0, float("nan"), float("nan"), 1.0, 0, 0, 0, 0]),
        "empty": torch.zeros(0, 3),
        "steps": torch.tensor([3]),
    }
    path = tmp_path / "m.safetensors"
    safetensors.save_file(tensors, str(path))
    scan = scan_file(path)
    assert (scan.tensors, scan.elements, scan.bytes, scan.not_floating) == (3, 24 + 8, 24 * 2 + 8 * 4, 1)
    assert [(n.name, n.nan) for n in scan.non_finite] == [("rnn.bias_ih_l0", 2)]


def test_a_pickled_object_is_refused_without_trust(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(nn.GRU(2, 2), path)
    with pytest.raises(ScanRefused, match=r"torch.load\(weights_only=True, mmap=True\), which refuses a file"):
        scan_file(path)
    assert scan_file(path, trust_pickle=True).tensors == 4


def _anonymous_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise AssertionError("no RssAnon in /proc/self/status")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads anonymous memory from /proc (Linux)")
def test_scanning_a_large_file_adds_little_memory(tmp_path):
    # 128 MiB of float32. Unchunked, torch.isnan/isinf/isfinite on it add about 2x the tensor's size in
    # temporaries (measured: 432 MiB for 192 MiB); a chunked scan adds a few MiB, plus torch's one-time thread pool.
    elements = 32 * 2**20
    path = tmp_path / "big.pt"
    big = torch.zeros(elements)
    big[-1] = float("nan")
    torch.save({"w": big}, path)
    del big
    peak = [_anonymous_kib()]
    before = peak[0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _anonymous_kib())
            done.wait(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        scan = scan_file(path)
    finally:
        done.set()
        watcher.join()
    assert [(n.nan, n.numel) for n in scan.non_finite] == [(1, elements)]
    added_mib = (peak[0] - before) / 1024
    assert added_mib < 64, f"the scan added {added_mib:.1f} MiB of anonymous memory"
