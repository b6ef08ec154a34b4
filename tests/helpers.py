"""Shared test helpers: the one place tests import from (besides tests.strategies).

- ``run``/reference recurrences: the recurrent equations written with plain torch matmuls, an
  independent reference for counts and compute. Each function takes a real torch module, runs
  its computation step by step with ``torch.mm`` (so ``FlopCounterMode`` sees every matrix
  product) and returns the output, which tests compare with the module's own forward.
- model factories the CLI tests import as ``tests.helpers:NAME``.
- independent counts (``numel``, ``lstm_count``), ``problems_of``, ``free_port``.
- ``CountsWalks``: a root module that records every traversal of the model, by observation.
- ``in_threads``: run callables in threads that start together.
- real Keras 3 models on the torch backend (saved as ``.keras`` and legacy ``.h5``), and torch
  modules built from the expressions the Keras and ONNX readers write.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import torch
from torch import nn

from torchlstm_params.cli import main

T = TypeVar("T")


def _cell(module: nn.RNNBase, x: torch.Tensor, state: tuple[torch.Tensor, ...], sfx: str) -> tuple[torch.Tensor, ...]:
    w_ih, w_hh = getattr(module, f"weight_ih{sfx}"), getattr(module, f"weight_hh{sfx}")
    b_ih = getattr(module, f"bias_ih{sfx}") if module.bias else 0
    b_hh = getattr(module, f"bias_hh{sfx}") if module.bias else 0
    gi = torch.mm(x, w_ih.t()) + b_ih
    gh = torch.mm(state[0], w_hh.t()) + b_hh
    if module.mode == "LSTM":
        i, f, g, o = (gi + gh).chunk(4, dim=1)
        c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        if module.proj_size:
            h = torch.mm(h, getattr(module, f"weight_hr{sfx}").t())
        return h, c
    if module.mode == "GRU":
        ir, iz, in_ = gi.chunk(3, dim=1)
        hr, hz, hn = gh.chunk(3, dim=1)
        r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
        n = torch.tanh(in_ + r * hn)
        return ((1 - z) * n + z * state[0],)
    act = torch.relu if module.mode == "RNN_RELU" else torch.tanh
    return (act(gi + gh),)


def run(module: nn.RNNBase, x: torch.Tensor) -> torch.Tensor:
    """Output of ``module`` on ``x`` of shape (seq_len, batch, input_size), zero initial state."""
    seq_len, batch, _ = x.shape
    directions = 2 if module.bidirectional else 1
    r = module.proj_size or module.hidden_size
    layer_input = x
    for k in range(module.num_layers):
        outputs = []
        for d in range(directions):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            state: tuple[torch.Tensor, ...] = (torch.zeros(batch, r),)
            if module.mode == "LSTM":
                state = (torch.zeros(batch, r), torch.zeros(batch, module.hidden_size))
            steps = range(seq_len - 1, -1, -1) if d else range(seq_len)
            out = [torch.empty(0)] * seq_len
            for t in steps:
                state = _cell(module, layer_input[t], state, sfx)
                out[t] = state[0]
            outputs.append(torch.stack(out))
        layer_input = torch.cat(outputs, dim=2)
    return layer_input


# --- model factories the CLI tests import as 'tests.helpers:NAME' ---


def tagger(hidden: int = 32, vocab: int = 100) -> nn.Module:
    return nn.Sequential(nn.Embedding(vocab, 16), nn.GRU(16, hidden, bidirectional=True), nn.Linear(2 * hidden, 5))


def needs_real_device() -> nn.Module:
    model = nn.LSTM(4, 4)
    if next(model.parameters()).is_meta:
        raise RuntimeError("this factory reads weights and cannot run on meta")
    return model


def odd_tensors() -> nn.Module:
    """Parameters of dtypes and layouts torch's isfinite does not take, each holding one NaN (CLI factory)."""
    model = nn.Module()
    values = torch.tensor([float("nan"), 1.0, 0.0, 2.0])
    model.register_parameter("f8", nn.Parameter(values.to(torch.float8_e4m3fn), requires_grad=False))
    model.register_parameter("coo", nn.Parameter(values.to_sparse()))
    model.register_parameter("csr", nn.Parameter(values.view(2, 2).to_sparse_csr()))
    return model


def not_a_model() -> int:
    return 3


def broken() -> nn.Module:
    raise KeyError("missing config entry 'layers'")


# --- time limits ---


class TookTooLong(Exception):
    """Raised inside a ``within`` block that outlives its time limit."""


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Fail (TookTooLong) if the block runs longer than ``seconds`` of wall time (SIGALRM, main thread)."""

    def expire(signum: int, frame: object) -> None:
        raise TookTooLong(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def with_nan() -> nn.Module:
    """An LSTM(4, 3) whose weight_ih_l0 holds 2 NaN and whose bias_hh_l0 holds 1 Inf (when built for real)."""
    model = nn.LSTM(4, 3)
    with torch.no_grad():
        model.get_parameter("weight_ih_l0")[0, 0] = float("nan")
        model.get_parameter("weight_ih_l0")[5, 1] = float("nan")
        model.get_parameter("bias_hh_l0")[2] = float("inf")
    return model


def chatty() -> nn.Module:
    """A factory that prints while it builds, as research code does."""
    print("building the model, please wait")
    return nn.GRU(2, 3)


def piped_names() -> nn.Module:
    """Module names holding a '|', which markdown tables split cells on."""
    return nn.ModuleDict({"enc|dec": nn.LSTM(2, 3), "head": nn.Linear(3, 1)})


def frozen_rnn() -> nn.Module:
    """An embedding that trains and an LSTM (path '1') that is frozen."""
    model = nn.Sequential(nn.Embedding(5, 3), nn.LSTM(3, 2))
    model[1].requires_grad_(False)
    return model


def slow_to_build() -> nn.Module:
    """Says so on stderr, then takes a minute: for interrupting the command line mid-run."""
    import sys
    import time

    print("building", file=sys.stderr, flush=True)
    time.sleep(60)
    return nn.LSTM(2, 2)


def wide(n: int = 4000) -> nn.Module:
    """Many small modules: a summary far longer than a pipe's buffer."""
    return nn.Sequential(*(nn.Linear(1, 1) for _ in range(n)))


# --- independent counts ---


def numel(model: nn.Module) -> int:
    """torch's own count: the elements of every unique parameter."""
    return sum(p.numel() for p in model.parameters())


def lstm_count(i: int, h: int, layers: int = 1, bidirectional: bool = False, proj: int = 0, bias: bool = True) -> int:
    """RNN_FORMULAS.md's LSTM count, written out by hand (independent of the library's formulas)."""
    d = 2 if bidirectional else 1
    r = proj or h
    total = 0
    for k in range(layers):
        in_k = i if k == 0 else d * r
        total += d * (4 * h * (in_k + r) + (8 * h if bias else 0) + proj * h)
    return total


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    """``torchlstm-params ARGV`` in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def problems_of(model: nn.Module, **options: object) -> list[tuple[str, str, str]]:
    """``find_problems`` as plain (code, path, message) tuples."""
    from torchlstm_params import find_problems

    _, problems = find_problems(model, **options)
    return [(p.code, p.path, p.message) for p in problems]


# --- Keras 3 models (torch backend) and torch modules from expressions ---


#: Keras 3.15's Variable.__array__ predates numpy 2's ``copy`` keyword, so numpy warns whenever Keras
#: itself turns a variable into an array (saving a model, get_weights). Keras's issue, not ours:
#: test modules that use Keras ignore exactly this warning.
KERAS_NUMPY2_WARNING = (
    "ignore:__array__ implementation doesn't accept a copy keyword, so passing copy=False failed:DeprecationWarning"
)


def import_keras() -> Any:
    """Keras 3 on the torch backend (no TensorFlow), or skip the test saying what is missing."""
    # The backend is fixed when keras is first imported, so it is chosen before the import.
    os.environ["KERAS_BACKEND"] = "torch"
    keras = pytest.importorskip("keras", reason="keras (Keras 3) is not installed: pip install keras")
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras was already imported with the {keras.backend.backend()} backend")
    return keras


def keras_model(build: Callable[[Any, Any], Any], input_shape: tuple[int, ...] = (6, 3), seed: int = 0) -> Any:
    """A functional Keras model ``build(layers, inputs) -> outputs`` with every weight drawn at random.

    Random weights (biases included) make every block of every tensor matter when outputs are compared.
    """
    keras = import_keras()
    import numpy as np

    inputs = keras.Input(input_shape)
    model = keras.Model(inputs, build(keras.layers, inputs))
    rng = np.random.default_rng(seed)
    for variable in model.weights:  # not get_weights(): Keras 3.15 warns there under numpy 2
        variable.assign(rng.normal(0.0, 0.5, size=tuple(variable.shape)).astype("float32"))
    return model


def keras_predict(model: Any, x: torch.Tensor) -> torch.Tensor:
    """Keras's own output for ``x``, as a CPU tensor."""
    keras = import_keras()
    return torch.from_numpy(keras.ops.convert_to_numpy(model(x.numpy())))


def save_both(model: Any, directory: Path, stem: str) -> tuple[Path, Path]:
    """The model saved as a Keras 3 ``.keras`` zip and as a legacy ``.h5`` file."""
    keras_path, h5_path = directory / f"{stem}.keras", directory / f"{stem}.h5"
    model.save(keras_path)
    model.save(h5_path)  # Keras logs that HDF5 is legacy (through absl logging, not a Python warning)
    return keras_path, h5_path


def torch_module(expression: str) -> nn.Module:
    """The module a ``nn.LSTM(3, 2, batch_first=True)``-style expression builds."""
    module = eval(expression, {"nn": nn})  # an expression the library wrote, checked by torch itself
    assert isinstance(module, nn.Module)
    return module


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a gloo process group)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- counting walks of a model, by observation ---


class CountsWalks(nn.Module):
    """A module that records every read of its own ``_modules`` once recording is started.

    Every traversal of a module tree reads the root's ``_modules`` exactly once: the library's
    walk (``module._modules``), and torch's ``named_modules``/``modules``/``parameters``/
    ``buffers``/``state_dict``/``children``. Nothing else does: ``nn.Module.__getattr__`` (``self.rnn``
    in a forward) and ``__setattr__`` go through ``__dict__``. So the reads of the root's
    ``_modules`` are the walks of the model. Each read is recorded as ``file:function`` of the
    code that made it, in a list (``walks``) or, for a model built inside the CLI, as a line of
    a file. Mix it in first: ``class Model(CountsWalks, nn.Module)``.
    """

    def record_walks(self, to_file: str | Path | None = None) -> None:
        """Start recording (again), forgetting earlier reads; into ``self.walks`` or ``to_file``."""
        self.__dict__["walks"] = []
        self.__dict__["walks_file"] = None if to_file is None else Path(to_file)
        if to_file is not None:
            Path(to_file).write_text("", encoding="utf-8")

    def stop_recording(self) -> None:
        self.__dict__.pop("walks", None)
        self.__dict__.pop("walks_file", None)

    def __getattribute__(self, name: str) -> Any:
        if name == "_modules":
            state = object.__getattribute__(self, "__dict__")
            walks = state.get("walks")
            if walks is not None:
                code = sys._getframe(1).f_code
                where = f"{Path(code.co_filename).name}:{code.co_name}"
                walks.append(where)
                if state["walks_file"] is not None:
                    with state["walks_file"].open("a", encoding="utf-8") as fh:
                        fh.write(where + "\n")
        return super().__getattribute__(name)


class WalkCountedModel(CountsWalks, nn.Module):
    """A small real model (LSTM, GRU cell, Linear layers, a tied weight) that counts its walks."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(12, 4)
        self.encoder = nn.LSTM(4, 6, num_layers=2)
        self.decoder = nn.Sequential(nn.GRUCell(6, 6), nn.Linear(6, 4))
        self.out = nn.Linear(4, 12)
        self.out.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.encoder(self.embed(tokens))
        return self.out(self.decoder[1](self.decoder[0](out[-1])))


#: WalkCountedModel's unique parameters, by hand: embedding 12·4 (tied to out.weight); LSTM layer 0
#: 4·6·(4+6) + 8·6, layer 1 4·6·(6+6) + 8·6; GRUCell 3·6·(6+6) + 6·6; Linear 6·4 + 4; out's bias 12.
WALK_COUNTED_PARAMS = 48 + (240 + 48) + (288 + 48) + (216 + 36) + (24 + 4) + 12


def walk_counted_model(log: str) -> nn.Module:
    """CLI factory: a WalkCountedModel recording its walks, one line each, into the file ``log``."""
    model = WalkCountedModel()
    model.record_walks(to_file=log)
    return model


def lightning_tagger(hidden: int = 8, *, count_walks: bool = False) -> Any:  # a LightningModule, typed Any
    """A small real LightningModule (an LSTM and a linear head) that tests train with a real Trainer.

    With ``count_walks`` it is also a :class:`CountsWalks` (typed ``Any`` so lightning stays optional).
    """
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    bases: tuple[type, ...] = (CountsWalks, pl.LightningModule) if count_walks else (pl.LightningModule,)

    class Tagger(*bases):  # type: ignore[misc]
        def __init__(self, hidden: int = 8) -> None:
            super().__init__()
            self.rnn = nn.LSTM(4, hidden, batch_first=True)
            self.head = nn.Linear(hidden, 2)
            self.steps = 0

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            self.steps += 1
            x, y = batch
            out, _ = self.rnn(x)
            return nn.functional.cross_entropy(self.head(out[:, -1]), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
            data = TensorDataset(torch.randn(8, 5, 4), torch.randint(0, 2, (8,)))
            return DataLoader(data, batch_size=4)

    return Tagger(hidden)


# --- threads ---


def in_threads(tasks: list[Callable[[], T]]) -> list[T]:
    """Run each task in its own thread, all released at once by a barrier; results in task order.

    An exception in a task is re-raised here (the first one, by task order).
    """
    barrier = threading.Barrier(len(tasks))
    results: list[Any] = [None] * len(tasks)
    errors: list[BaseException | None] = [None] * len(tasks)

    def run_task(k: int) -> None:
        barrier.wait()
        try:
            results[k] = tasks[k]()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread below
            errors[k] = exc

    threads = [threading.Thread(target=run_task, args=(k,)) for k in range(len(tasks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for error in errors:
        if error is not None:
            raise error
    return results


@contextlib.contextmanager
def gc_samples() -> Iterator[list[bool]]:
    """``gc.isenabled()`` sampled from a background thread while the block runs (a flip shows up)."""
    samples: list[bool] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(gc.isenabled())
            done.wait(0.0005)

    watcher = threading.Thread(target=sample)
    watcher.start()
    try:
        yield samples
    finally:
        done.set()
        watcher.join()


# --- reading rendered text ---


def flat(text: str) -> str:
    """``text`` with every run of whitespace made one space (notes are wrapped to the screen)."""
    return " ".join(text.split())


def cell(text: str, column: str, row: str) -> str:
    """The cell under ``column`` in the row whose first cell is ``row``, from a table in tabulate's "simple" format.

    Columns are found from the dashed rule under the headers, so a cell is read exactly as printed.
    """
    lines = text.splitlines()
    for i, line in enumerate(lines[:-1]):
        rule = lines[i + 1]
        if not rule.startswith("-") or set(rule) - {"-", " "}:
            continue
        spans = []
        start = 0
        for part in rule.split("  "):
            if part:
                begin = rule.index(part, start)
                spans.append((begin, begin + len(part)))
                start = begin + len(part)
        headers = [line[a:b].strip() for a, b in spans]
        if column not in headers:
            continue
        at = headers.index(column)
        for body in lines[i + 2 :]:
            if not body.strip() or body.startswith("-"):
                break
            if body[spans[0][0] : spans[0][1]].strip() == row:
                return body[spans[at][0] : spans[at][1]].strip()
    raise AssertionError(f"no table with column {column!r} and a row {row!r} in:\n{text}")


# --- real-world-sized models for the golden outputs (built on meta: no memory, no time) ---


class _Attention(nn.Module):
    def __init__(self, query: int, key: int, width: int) -> None:
        super().__init__()
        self.query = nn.Linear(query, width)
        self.key = nn.Linear(key, width)
        self.energy = nn.Linear(width, 1, bias=False)


class _Decoder(nn.Module):
    """An attention decoder that runs an LSTMCell once per output token, with a learned initial state."""

    def __init__(self, vocab: int, embed: int, context: int, hidden: int) -> None:
        super().__init__()
        self.h0 = nn.Parameter(torch.zeros(hidden))  # held by the decoder itself: an "(own)" row
        self.c0 = nn.Parameter(torch.zeros(hidden))
        self.embed = nn.Embedding(vocab, embed)
        self.attention = _Attention(hidden, context, 256)
        self.cell = nn.LSTMCell(embed + context, hidden)
        self.out = nn.Linear(hidden, vocab)


class SpeechRecognizer(nn.Module):
    """A listen-attend-spell style recognizer of about 30 M parameters: a stride-4 convolutional front end,
    a 4-layer bidirectional projected LSTM encoder and an attention decoder built around an LSTMCell."""

    def __init__(self, mels: int = 80, vocab: int = 5000) -> None:
        super().__init__()
        self.frontend = nn.Sequential(
            nn.Conv2d(1, 32, 3, stride=2), nn.ReLU(), nn.Conv2d(32, 32, 3, stride=2), nn.ReLU()
        )
        self.proj_in = nn.Linear(32 * 19, 512)  # 80 mel bins -> 19 after two stride-2 3x3 convolutions
        self.encoder = nn.LSTM(512, 768, num_layers=4, bidirectional=True, proj_size=256, batch_first=True)
        self.decoder = _Decoder(vocab, 320, 512, 640)


def speech_recognizer() -> nn.Module:
    with torch.device("meta"):
        return SpeechRecognizer()


class _Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.rnn = nn.LSTM(width, width // 2, bidirectional=True, batch_first=True)
        self.proj = nn.Linear(width, width)
        self.drop = nn.Dropout(0.1)
        self.ff = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))


class BlockStack(nn.Module):
    """364 modules: an input layer, 40 residual blocks around a bidirectional LSTM, and a head."""

    def __init__(self, width: int = 256, blocks: int = 40) -> None:
        super().__init__()
        self.frontend = nn.Linear(80, width)
        self.blocks = nn.ModuleList(_Block(width) for _ in range(blocks))
        self.head = nn.Linear(width, 500)


def block_stack() -> nn.Module:
    with torch.device("meta"):
        return BlockStack()


# --- third-party recurrent layers (tests/test_{audio,speech,forecast,graph}.py) ---

_JIT_DEPRECATED = r"`torch\.jit\.script` is deprecated"


def import_quietly(name: str, reason: str) -> Any:
    """``pytest.importorskip`` for a package whose import warns under torch 2.13 (torch_geometric's
    ``torch.jit.script`` calls): that one deprecation is let through, nothing else."""
    import warnings

    import pytest

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_JIT_DEPRECATED, category=DeprecationWarning)
        return pytest.importorskip(name, reason=reason)


def tgt_recurrent(name: str) -> Any:
    """The real module ``torch_geometric_temporal.nn.recurrent.<name>`` of the installed package.

    torch-geometric-temporal 0.56's package ``__init__`` imports ``torch_sparse`` (for
    EvolveGCNO alone), which has no wheel for torch 2.13. Where it is missing, the module's
    own file is loaded from the installed package under its own name, so its classes are the
    package's, defined by the package's code (the recurrent modules need torch_geometric only).
    """
    import importlib
    import importlib.util
    import sys
    import warnings

    full = f"torch_geometric_temporal.nn.recurrent.{name}"
    if full in sys.modules:
        return sys.modules[full]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_JIT_DEPRECATED, category=DeprecationWarning)
        try:
            importlib.import_module("torch_geometric_temporal.nn.recurrent")
            return sys.modules[full]
        except ModuleNotFoundError as exc:
            if exc.name != "torch_sparse":
                raise
        if full in sys.modules:  # imported before the package's __init__ reached torch_sparse
            return sys.modules[full]
        found = importlib.util.find_spec("torch_geometric_temporal")
        assert found is not None
        assert found.submodule_search_locations is not None
        root = found.submodule_search_locations[0]
        spec = importlib.util.spec_from_file_location(full, f"{root}/nn/recurrent/{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)
        return module


def assert_recognised(model: nn.Module, kinds: dict[str, str]) -> Any:
    """Every recurrent module of ``model`` is the one named (path -> kind), each with status ok and
    formula = tensors = torch's numel of that module. Returns the report."""
    from torchlstm_params import summarize

    report = summarize(model)
    assert {e.name: e.spec.kind for e in report.recurrent} == kinds
    for entry in report.recurrent:
        module = model.get_submodule(entry.name)
        assert entry.status == "ok", (entry.name, entry.findings, entry.explanations)
        assert entry.formula_params == entry.tensor_params == numel(module), entry.name
    assert report.total_params == numel(model)
    return report


def assert_tamper_named(model: nn.Module, path: str, tensor: str) -> None:
    """Give ``path``'s tensor ``tensor`` one row too many: summarize names it, check() fails on it."""
    from torchlstm_params import CheckFailedError, check, summarize

    owner_path, _, leaf = tensor.rpartition(".")
    owner = model.get_submodule(".".join(p for p in (path, owner_path) if p))
    old = getattr(owner, leaf)
    assert isinstance(old, nn.Parameter)
    setattr(owner, leaf, nn.Parameter(torch.zeros(old.shape[0] + 1, *old.shape[1:])))
    entry = next(e for e in summarize(model).recurrent if e.name == path)
    assert entry.status == "mismatch"
    assert [(f.tensor, f.problem, f.expected_shape, f.found_shape) for f in entry.findings] == [
        (tensor, "wrong_shape", tuple(old.shape), (old.shape[0] + 1, *old.shape[1:]))
    ]
    import pytest

    with pytest.raises(CheckFailedError) as failed:
        check(model)
    problems = failed.value.problems
    assert any(p.code == "RNN_SHAPE_MISMATCH" and p.path == path and tensor in p.message for p in problems)


def checkpoint_rows(model: nn.Module, path: Any) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """(live, from a torch.save'd state dict) rows of every recurrent entry: name, settings, counts, status."""
    from torchlstm_params import summarize
    from torchlstm_params.checkpoint import build_model, read_checkpoint

    torch.save(model.state_dict(), path)
    stand_in = build_model(read_checkpoint(path)).model

    def rows(report: Any) -> list[tuple[object, ...]]:
        return [
            (e.name, *e.settings.values(), e.formula_params, e.tensor_params, e.status, e.formula.derivation)
            for e in report.recurrent
        ]

    return rows(summarize(model)), rows(summarize(stand_in))


def speechbrain_rnn(reason: str) -> Any:
    """``speechbrain.nnet.RNN`` (see :func:`speechbrain_module`)."""
    return speechbrain_module("speechbrain.nnet.RNN", reason)


def speechbrain_module(name: str, reason: str) -> Any:
    """speechbrain's module ``name``, with speechbrain's lazy redirect modules taken back out of ``sys.modules``.

    speechbrain 1.1 puts lazy stand-ins for deprecated paths (``speechbrain.pretrained``,
    ``speechbrain.k2_integration``, ...) into ``sys.modules``; reading any attribute of one imports
    its target, which needs k2, transformers, flair or numba. Hypothesis's pytest plugin reads
    ``__file__`` of every module in ``sys.modules`` and would fail on them. Only those stand-ins
    are removed; ``name`` and everything it imported stay as speechbrain made them.
    """
    import sys

    import pytest

    module = pytest.importorskip(name, reason=reason)
    from speechbrain.utils.importutils import LazyModule

    for key, value in list(sys.modules.items()):
        if isinstance(value, LazyModule) and value.lazy_module is None:
            del sys.modules[key]
    return module
