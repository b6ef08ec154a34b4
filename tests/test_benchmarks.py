"""The benchmarks run end to end on tiny sizes, so they cannot rot (timings are not asserted)."""

from __future__ import annotations

import pytest

from benchmarks import bench_checkpoint, bench_hook, bench_peers, bench_summarize


def test_bench_summarize_smoke(capsys: pytest.CaptureFixture[str]):
    bench_summarize.main(["--modules", "51", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "51 modules, 300 tensors" in out  # 10 blocks of (Sequential, LSTM, GRU, RNN, Linear) + root
    assert "ratio summarize / baseline:" in out


def test_bench_hook_smoke(capsys: pytest.CaptureFixture[str]):
    bench_hook.main(["--repeats", "2"])
    assert "ratio after-hook / never-hooked:" in capsys.readouterr().out


def test_bench_checkpoint_smoke(capsys: pytest.CaptureFixture[str]):
    bench_checkpoint.main(["--layers", "1", "--hidden", "8", "--many", "60"])
    out = capsys.readouterr().out
    # torch.save and safetensors state dicts, the whole-model pickle (safe read and full inspect), many tensors
    assert out.count("time ratio") == 5
    assert out.count(f"{4 * 8 * 16 + 8 * 8:,} params") == 3
    assert "torch.save(model) whole-model pickle:" in out
    assert "many small tensors: 60 tensors" in out


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning", "ignore::FutureWarning")
def test_bench_peers_smoke(capsys: pytest.CaptureFixture[str]):
    pytest.importorskip("torchinfo", reason="the bench extra is not installed")
    pytest.importorskip("fvcore", reason="the bench extra is not installed")
    text = bench_peers.main(["--scale", "0.002", "--repeats", "1", "--limit", "5"])
    assert "| 5c. tied-weight LM | torchlstm_params |" in text
    rows = [line for line in text.splitlines() if "| torchlstm_params |" in line]
    assert len(rows) == 8 and all(line.endswith("| yes |") for line in rows)  # our totals equal the truth


def test_bench_plot_smoke(capsys: pytest.CaptureFixture[str]):
    pytest.importorskip("plotly", reason="the plot extra (plotly) is not installed")
    from benchmarks import bench_plot

    bench_plot.main(["--modules", "51", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "51 modules" in out and "report.plot(html) median" in out
