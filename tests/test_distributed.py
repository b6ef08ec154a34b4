"""Real torch.distributed process groups: 2 gloo ranks on CPU, FSDP2 and DTensor tensor parallelism."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from torch.multiprocessing.spawn import spawn as mp_spawn

from tests import distributed_workers
from tests.helpers import free_port
from torchlstm_params import gather_ranks, local_figures

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning", "ignore::DeprecationWarning")


def spawn(fn, tmp_path: Path) -> float:
    start = time.perf_counter()
    mp_spawn(fn, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    return time.perf_counter() - start


def test_fsdp2_global_and_local_figures(tmp_path: Path):
    seconds = spawn(distributed_workers.fsdp, tmp_path)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    unsharded = sum(p.numel() for p in distributed_workers.model().parameters())
    for data in ranks:
        assert data["type"] == "FSDPLSTM"  # FSDP2's subclass of nn.LSTM, detected by isinstance
        assert data["total"] == unsharded  # global, the same on every rank
        assert data["statuses"] == ["ok"]  # cross-checked on global shapes
        assert data["local"] == data["local_numel"]  # this rank's to_local() elements
        assert data["local_bytes"] == 4 * data["local_numel"]
        assert data["placements"] == ["Shard(dim=0)"]
    assert sum(r["local"] for r in ranks) == unsharded
    for rank, data in enumerate(ranks):
        assert data["report_local"] == data["local"]
        assert f"This rank ({rank} of 2, cpu): {data['local']:,} local params" in data["text"]
        assert f"Total params: {unsharded:,}" in data["text"]
        assert "Rank    Local params" in data["text"]  # the gathered per-rank table
        assert "  1.weight_ih_l0: Shard(dim=0), global (32, 4), here (16, 4)" in data["text"]
    assert ranks[0]["gathered"] == ranks[1]["gathered"] == [[0, ranks[0]["local"]], [1, ranks[1]["local"]]]
    assert ranks[0]["error"] == ranks[1]["error"]  # the same mismatch, said the same way on every rank
    assert "[RNN_SHAPE_MISMATCH] 1: weight_hh_l1: expected shape (32, 8), found (32, 9)" in ranks[0]["error"]
    assert seconds < 60


def test_tensor_parallel_placements(tmp_path: Path):
    spawn(distributed_workers.tensor_parallel, tmp_path)
    for rank in (0, 1):
        data = json.loads((tmp_path / f"tp{rank}.json").read_text())
        assert data["total"] == 3 * 6 * (4 + 6) + 2 * 3 * 6
        assert data["status"] == "ok"
        assert data["sharded"] == [
            ["weight_ih_l0", "Shard(dim=0)", [18, 4], [9, 4]],
            ["weight_hh_l0", "Replicate()", [18, 6], [18, 6]],
        ]
        # local: half of weight_ih, all of weight_hh (replicated), both plain biases
        assert data["local"] == 9 * 4 + 18 * 6 + 2 * 18


def test_without_a_process_group_figures_are_local_and_gather_is_a_no_op():
    model = distributed_workers.model()
    mine = local_figures(model)
    assert (mine.rank, mine.world_size, mine.local_params) == (0, 1, sum(p.numel() for p in model.parameters()))
    assert gather_ranks(model) == (mine,)


_FILTERS_SCRIPT = """
import sys, warnings
from torch import nn
import torchlstm_params
from torchlstm_params import gather_ranks, local_figures, summarize
assert "torch.distributed.tensor" not in sys.modules, "imported before the call: the test would prove nothing"
before = list(warnings.filters)
model = nn.Sequential(nn.LSTM(3, 4), nn.Linear(4, 2))
local_figures(model)
gather_ranks(model)
summarize(model)
print(before == list(warnings.filters), "torch.distributed.tensor" in sys.modules)
"""


def test_local_figures_leave_the_callers_warnings_filters_alone():
    """In a fresh interpreter (nothing else imported torch.distributed.tensor first): no filter added."""
    done = subprocess.run([sys.executable, "-c", _FILTERS_SCRIPT], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]
