"""The picture: its numbers are the report's, and a real headless browser draws it from an offline file."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from torch import nn

from benchmarks.bench_summarize import mixed_model
from tests.helpers import block_stack, numel
from torchlstm_params import TorchLstmParamsError, summarize
from torchlstm_params.cli import main
from torchlstm_params.plot import MAX_CHILDREN, MAX_NODES, nodes


def children_of(data) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, parent in enumerate(data.parents):
        out.setdefault(parent, []).append(i)
    return out


def assert_adds_up(data) -> None:
    """plotly's branchvalues="total": every box's value is the sum of its children's."""
    values = dict(zip(data.ids, data.values, strict=True))
    assert len(values) == len(data.ids)  # ids are unique
    for parent, kids in children_of(data).items():
        if parent:
            assert values[parent] == sum(data.values[k] for k in kids), parent


def test_boxes_are_the_reports_numbers_down_to_each_tensor_role():
    model = block_stack()
    data = nodes(summarize(model))
    assert data.values[data.ids.index("(root)")] == numel(model)  # torch's own count
    assert_adds_up(data)
    value = dict(zip(data.ids, data.values, strict=True))
    rnn = model.get_submodule("blocks.0.rnn")
    assert value["blocks.0–39.rnn"] == 40 * numel(rnn)
    assert value["blocks.0–39.rnn/layer 0/reverse/weight_hh"] == 40 * rnn.get_parameter("weight_hh_l0_reverse").numel()
    assert value["blocks.0–39.ff"] == 40 * numel(model.get_submodule("blocks.0.ff"))
    assert "blocks.0–39.drop" not in value  # nothing to draw
    assert data.max_depth == 4 and "blocks.0–39.ff.0" in value
    aggregated = nodes(summarize(model), max_depth=2)
    shallow = dict(zip(aggregated.ids, aggregated.values, strict=True))
    assert "blocks.0–39.rnn" not in shallow and shallow["blocks.0–39"] == numel(
        model.get_submodule("blocks")
    )  # aggregated


def test_shared_and_own_parameters_still_add_up():
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.start = nn.Parameter(torch.zeros(7))
            self.embed = nn.Embedding(10, 4)
            self.rnn = nn.GRU(4, 4)
            self.out = nn.Linear(4, 10)
            self.out.weight = self.embed.weight

    model = Tied()
    data = nodes(summarize(model), max_depth=None)
    assert_adds_up(data)
    value = dict(zip(data.ids, data.values, strict=True))
    assert value["(root)"] == numel(model)  # the tied weight once
    assert value["(root) (own)"] == 7
    assert value["out"] == 10  # its weight is counted where it was first registered, in embed
    assert value["rnn/layer 0/forward/bias_hh"] == model.rnn.get_parameter("bias_hh_l0").numel()


def test_only_exact_recurrent_modules_are_opened():
    model = nn.Sequential(nn.LSTM(3, 4), nn.LSTM(3, 4))
    model[1].weight_hh_l0 = nn.Parameter(torch.zeros(16, 5))
    data = nodes(summarize(model))
    assert_adds_up(data)
    assert "0/layer 0" in data.ids and not any(i.startswith("1/") for i in data.ids)
    assert data.values[data.ids.index("1")] == numel(model[1])


def test_the_20000_module_benchmark_model_is_aggregated():
    model = mixed_model(20_001)
    report = summarize(model)
    data = nodes(report, max_depth=None, fold=False)
    assert sum("/" not in i for i in data.ids) <= MAX_NODES  # module boxes; boxes by role come on top
    assert data.values[0] == numel(model)
    assert_adds_up(data)
    # 4,000 alike blocks under the root: the largest MAX_CHILDREN - 1 are drawn, the rest as one box.
    rest = 4_000 - (MAX_CHILDREN - 1)
    assert data.values[data.ids.index(f"(root)/{rest:,} more")] == rest * numel(model.get_submodule("0"))
    folded = nodes(report)
    assert len(folded.ids) < 80 and folded.values[0] == numel(model)


def figure_of(model: nn.Module):
    pytest.importorskip("plotly", reason="the plot extra (plotly) is not installed")
    return summarize(model).plot()


def test_plotly_figure_carries_the_boxes():
    model = block_stack()
    fig = figure_of(model)
    (trace,) = fig.data
    data = nodes(summarize(model))
    assert list(trace.ids) == list(data.ids) and list(trace.values) == list(data.values)
    assert trace.branchvalues == "total" and trace.type == "treemap"
    icicle = summarize(model).plot(kind="icicle")
    assert icicle.data[0].type == "icicle"


class ScriptTags(HTMLParser):
    """The page's <script> tags (script bodies are not parsed as markup, so strings inside plotly.js are not tags)."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.inline = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            source = dict(attrs).get("src")
            if source is None:
                self.inline += 1
            else:
                self.sources.append(source)


def test_html_is_self_contained(tmp_path: Path):
    pytest.importorskip("plotly", reason="the plot extra (plotly) is not installed")
    path = tmp_path / "model.html"
    summarize(block_stack()).plot(path)
    html = path.read_text(encoding="utf-8")
    tags = ScriptTags()
    tags.feed(html)
    assert tags.sources == [] and tags.inline >= 1  # no script is fetched: plotly.js is inside the page
    assert "Plotly.newPlot" in html and len(html) > 1_000_000


def test_cli_writes_the_plot(tmp_path: Path, capsys):
    pytest.importorskip("plotly", reason="the plot extra (plotly) is not installed")
    path = tmp_path / "gru.html"
    assert main(["GRU(8, 16, num_layers=2)", "--plot", str(path)]) == 0
    assert f"written to {path}" in capsys.readouterr().out
    assert "weight_ih" in path.read_text(encoding="utf-8")
    assert main(["GRU(8, 16)", "--plot", str(tmp_path / "gru.txt")]) == 2
    assert "a plot is written as .html, .svg, .png or .pdf" in capsys.readouterr().err


def png_colours(path: Path) -> int:
    """Distinct pixel byte values of a PNG (read with zlib: no imaging library needed)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            chunks.append(data[position + 8 : position + 8 + length])
        position += 12 + length
    return len(set(zlib.decompress(b"".join(chunks))))


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI") == "true":  # .ci/run installs one: a missing browser there is a failure, not a skip
        pytest.fail("no headless browser in CI: .ci/run should have installed Debian's chromium")
    pytest.skip("no headless browser installed (Debian: apt-get install chromium)")


@pytest.mark.slow
def test_a_real_browser_draws_the_page_offline(tmp_path: Path):
    browser = chromium()
    pytest.importorskip("plotly", reason="the plot extra (plotly) is not installed")
    path = tmp_path / "model.html"
    summarize(block_stack()).plot(path)
    flags = [
        "--headless",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: the page must draw from what it holds
    ]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    # The labels the page drew (SVG text plotly rendered), not only the data it carries.
    drawn = set(re.findall(r'<text[^>]*class="slicetext"[^>]*><tspan class="line"[^>]*>([^<]*)<', dom))
    assert {"blocks", "frontend", "head"} <= drawn, drawn
    shot = tmp_path / "shot.png"
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", "--window-size=1200,800", path.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000 and png_colours(shot) > 20


def test_a_static_image_needs_kaleido(tmp_path: Path):
    pytest.importorskip("plotly", reason="the plot extra (plotly) is not installed")
    report = summarize(nn.GRU(3, 4))
    try:
        import kaleido  # noqa: F401
    except ImportError:
        with pytest.raises(TorchLstmParamsError, match=r"writing \.svg needs kaleido"):
            report.plot(tmp_path / "gru.svg")
    else:  # pragma: no cover - where kaleido and a browser for it are installed
        report.plot(tmp_path / "gru.svg")
        assert (tmp_path / "gru.svg").read_text(encoding="utf-8").lstrip().startswith("<")


def test_first_site_counts_add_up_to_the_total():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10))
    model[1].weight = model[0].weight
    report = summarize(model)
    rows = {row.name: k for row, k in zip(report.rows, report.first_site, strict=True)}
    assert rows == {"": numel(model), "0": 40, "1": 10}  # the tied weight under its first registration
    assert [row.params for row in report.rows] == [numel(model), 40, 50]  # rows count it in each subtree
