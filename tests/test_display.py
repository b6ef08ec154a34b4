"""The short repr, the notebook displays through IPython's real formatter, and colour on a real terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest
import torch
from torch import nn

from tests.helpers import block_stack, numel
from torchlstm_params import summarize
from torchlstm_params.display import short_repr, use_color


def test_short_repr_of_one_gru():
    gru = nn.GRU(16, 32)
    count = 3 * 32 * (16 + 32) + 2 * 3 * 32  # RNN_FORMULAS.md, by hand
    assert count == numel(gru) == 4_800
    assert repr(summarize(gru)) == "Report(GRU: 4,800 params, 4,800 trainable, 1 recurrent: ok)"


def test_short_repr_stays_short_on_the_364_module_model():
    text = repr(summarize(block_stack()))
    assert (
        text
        == f"Report(BlockStack: {numel(block_stack()):,} params, {numel(block_stack()):,} trainable, 40 recurrent: ok)"
    )


def test_short_repr_counts_statuses_and_lazy_tensors():
    model = nn.Sequential(nn.GRU(3, 4), nn.GRU(3, 4), nn.LazyLinear(2))
    model[1].weight_hh_l0 = nn.Parameter(torch.zeros(12, 5))
    assert short_repr(summarize(model)).endswith("2 lazy tensors not counted, 2 recurrent: 1 ok, 1 mismatch)")
    assert repr(summarize(nn.Linear(2, 3))) == "Report(Linear: 9 params, 9 trainable, no recurrent modules)"


def test_recurrent_entry_repr():
    (entry,) = summarize(nn.LSTM(10, 20, num_layers=2, bidirectional=True, proj_size=5)).recurrent
    assert (
        repr(entry)
        == "RecurrentEntry('(root)': LSTM(10, 20, num_layers=2, bidirectional=True, proj_size=5), 5,840 params, ok)"
    )


def test_ipython_display_formatter_shows_the_tables():
    formatters = pytest.importorskip("IPython.core.formatters", reason="IPython is not installed (test extra)")
    model = nn.Sequential(nn.Embedding(10, 4), nn.LSTM(4, 8))
    report = summarize(model)
    data, _ = formatters.DisplayFormatter().format(report)
    assert data["text/plain"] == str(report)
    html = data["text/html"]
    assert html.startswith('<div class="torchlstm-params-report">') and html.count("<table>") == 2
    assert f'<td style="text-align: right">{numel(model):,}</td>' in html
    markdown = data["text/markdown"]
    assert markdown.startswith("| Module | Type | Params | % | Trainable |\n| :--- | :--- | ---: | ---: | ---: |")
    assert f"| 1 | LSTM | {numel(model[1]):,} |" in markdown
    assert f"Total params: {numel(model):,}" in markdown
    # Inside a container, IPython's pretty printer falls back on the short repr.
    pretty = pytest.importorskip("IPython.lib.pretty", reason="IPython is not installed (test extra)")
    assert pretty.pretty([report]) == f"[{report!r}]"


def test_html_escapes_names():
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.add_module("<b>", nn.Linear(2, 2))

    html = summarize(Odd())._repr_html_()
    assert "&lt;b&gt;" in html and "<b>" not in html


def _cli_output(env: dict[str, str], tty: bool) -> str:
    """Run the command line in a real process, its stdout a pseudo-terminal or a pipe."""
    command = [sys.executable, "-m", "torchlstm_params", "GRU(3, 4)", "--check"]
    environment = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | env
    if not tty:
        done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=120, check=True)
        return done.stdout
    leader, follower = pty.openpty()
    try:
        with subprocess.Popen(command, stdout=follower, stderr=subprocess.PIPE, env=environment) as process:
            os.close(follower)
            chunks = []
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the terminal closed: the process is done
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            assert process.wait(timeout=120) == 0
    finally:
        os.close(leader)
    return b"".join(chunks).decode()


@pytest.mark.slow
def test_status_words_are_coloured_on_a_terminal_only():
    # An expression has shapes, no values: its check is reported as not complete (yellow), never as passed.
    headline = "Sanity check: NOT COMPLETE, no problems in the parts that ran"
    on_tty = _cli_output({"TERM": "xterm"}, tty=True)
    assert "\x1b[32mok\x1b[0m" in on_tty and f"\x1b[33m{headline}" in on_tty
    piped = _cli_output({"TERM": "xterm"}, tty=False)
    assert "\x1b[" not in piped and headline in piped
    no_color = _cli_output({"TERM": "xterm", "NO_COLOR": "1"}, tty=True)
    assert "\x1b[" not in no_color and headline in no_color


def test_use_color_reads_the_stream_and_the_environment(tmp_path):
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            assert use_color(terminal, {})
            assert not use_color(terminal, {"NO_COLOR": "1"})
            assert use_color(terminal, {"NO_COLOR": ""})  # no-color.org: set *and* non-empty
            assert not use_color(terminal, {"TERM": "dumb"})
        with (tmp_path / "out.txt").open("w") as file:
            assert not use_color(file, {})
    finally:
        os.close(leader)
        os.close(follower)


def test_render_colours_only_when_asked():
    model = nn.Sequential(nn.GRU(3, 4), nn.GRU(3, 4))
    model[1].weight_hh_l0 = nn.Parameter(torch.zeros(12, 5))
    report = summarize(model)
    assert "\x1b[" not in str(report)
    coloured = report.render(color=True)
    assert "\x1b[32mok\x1b[0m" in coloured and "\x1b[1;31mmismatch\x1b[0m" in coloured
    assert "\x1b[1;31mMISMATCH\x1b[0m at '1' (GRU)" in coloured
