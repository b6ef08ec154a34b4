"""Code each spawned rank runs (importable by torch.multiprocessing's spawn)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from torchlstm_params import CheckFailedError, check, gather_ranks, local_figures, summarize
from torchlstm_params.render import rank_table


def model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Embedding(10, 4), nn.LSTM(4, 8, num_layers=2, bidirectional=True), nn.Linear(16, 3))


def fsdp(rank: int, world: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh("cpu", (world,))
        net = model()
        fully_shard(net[1], mesh=mesh)
        fully_shard(net, mesh=mesh)
        report = summarize(net)  # no collective: a rank that skipped it would not hang the others
        mine = local_figures(net)
        everyone = gather_ranks(net)
        text = str(report) + "\n" + rank_table(everyone)
        local_numel = sum(p.to_local().numel() for p in net.parameters())  # type: ignore[attr-defined]
        broken = model()
        broken[1].weight_hh_l1 = nn.Parameter(torch.zeros(32, 9))
        fully_shard(broken[1], mesh=mesh)
        try:
            check(broken)
            error = ""
        except CheckFailedError as exc:
            error = str(exc)
        Path(out, f"rank{rank}.json").write_text(
            json.dumps(
                {
                    "type": type(net[1]).__name__,
                    "total": report.total_params,
                    "statuses": [e.status for e in report.recurrent],
                    "local": mine.local_params,
                    "local_bytes": mine.local_bytes,
                    "local_numel": local_numel,
                    "placements": sorted({s.placements for s in mine.sharded}),
                    "gathered": [[f.rank, f.local_params] for f in everyone],
                    "error": error,
                    "text": text,
                    "report_local": None if report.local is None else report.local.local_params,
                }
            )
        )
    finally:
        dist.destroy_process_group()


def tensor_parallel(rank: int, world: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.tensor import Replicate, Shard, distribute_tensor

        mesh = init_device_mesh("cpu", (world,))
        rnn = nn.GRU(4, 6)
        w_ih, w_hh = rnn.get_parameter("weight_ih_l0"), rnn.get_parameter("weight_hh_l0")
        rnn.weight_ih_l0 = nn.Parameter(distribute_tensor(w_ih.detach(), mesh, [Shard(0)]))
        rnn.weight_hh_l0 = nn.Parameter(distribute_tensor(w_hh.detach(), mesh, [Replicate()]))
        report = summarize(rnn)
        mine = local_figures(rnn)
        Path(out, f"tp{rank}.json").write_text(
            json.dumps(
                {
                    "total": report.total_params,
                    "status": report.recurrent[0].status,
                    "local": mine.local_params,
                    "sharded": [
                        [s.name, s.placements, list(s.global_shape), list(s.local_shape)] for s in mine.sharded
                    ],
                }
            )
        )
    finally:
        dist.destroy_process_group()
