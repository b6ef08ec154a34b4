"""Module trees, state dicts and ties read from real files written by torch.save, torch.jit.save and Lightning."""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import torchlstm_params
from torchlstm_params.errors import CheckpointError
from torchlstm_params.pickled import (
    PickledModule,
    find_module,
    find_state_dict,
    meta_tensors,
    module_tree,
    recurrent_settings,
    tie_groups,
)
from torchlstm_params.unpickle import PickledObject, read_pickled

PACKAGE_ROOT = Path(torchlstm_params.__file__).resolve().parents[1]
RECURRENT_KEYS = (
    *("mode", "input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout"),
    *("bidirectional", "proj_size", "nonlinearity"),
)

# torch 2.13 deprecates TorchScript; its archives are still what users have on disk.
_JIT_DEPRECATED = pytest.mark.filterwarnings("ignore:`torch.jit.(script|save)` is deprecated:DeprecationWarning")


def shapes(pairs: Any) -> list[tuple[str, tuple[int, ...]]]:
    return [(name, tuple(t.shape)) for name, t in pairs]


# -- a whole-model pickle whose class this process cannot import -----------------------------------

_HIDDEN_MODEL = '''
import torch
from torch import nn


class Encoder(nn.LSTM):
    """A user subclass of nn.LSTM: its settings live in the same __dict__."""


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(30, 8)
        self.encoder = nn.LSTM(8, 16, num_layers=2, bidirectional=True, proj_size=4, batch_first=True, dropout=0.1)
        self.gru = nn.GRU(8, 6, bias=False)
        self.rnn = nn.RNN(6, 5, nonlinearity="relu")
        self.cells = nn.ModuleList([nn.LSTMCell(8, 8), nn.GRUCell(8, 3), nn.RNNCell(3, 3, nonlinearity="relu")])
        self.sub = Encoder(8, 5)
        self.norm = nn.BatchNorm1d(8)
        self.register_buffer("mask", torch.ones(8), persistent=False)
        self.out = nn.Linear(8, 30, bias=False)
        self.out.weight = self.embed.weight  # tied
        self.shared = self.gru  # one module under two names
        self.scale = torch.ones(3)  # a tensor attribute: neither parameter nor buffer
'''

_WRITER = r"""
import json, pickle, sys, torch
from hidden_models_x import Tagger
from torch import nn
folder = sys.argv[1]
model = Tagger()
torch.save(model, f"{folder}/zip.pt")
torch.save(model, f"{folder}/legacy.pt", _use_new_zipfile_serialization=False)
torch.save({"model": model, "epoch": 3}, f"{folder}/wrapped.pt", pickle_protocol=4)
with open(f"{folder}/raw.pkl", "wb") as fh:
    pickle.dump(model, fh)
keys = ("mode", "input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional",
        "proj_size", "nonlinearity")
truth = {
    "parameters": [(n, list(p.shape)) for n, p in model.named_parameters()],
    "buffers": [(n, list(b.shape)) for n, b in model.named_buffers()],
    "state_dict": [(n, list(t.shape)) for n, t in model.state_dict().items()],
    "modules": [(n, f"{type(m).__module__}.{type(m).__qualname__}") for n, m in model.named_modules()],
    "total": sum(p.numel() for p in model.parameters()),
    "recurrent": {n: {k: getattr(m, k) for k in keys if hasattr(m, k)} for n, m in model.named_modules()
                  if isinstance(m, (nn.RNNBase, nn.RNNCellBase))},
}
print(json.dumps(truth))
"""


@pytest.fixture(scope="module")
def hidden_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Files written by a subprocess from a class in a module this process does not have on its path."""
    folder = tmp_path_factory.mktemp("hidden")
    (folder / "src").mkdir()
    (folder / "src" / "hidden_models_x.py").write_text(_HIDDEN_MODEL)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder / "src"), str(PACKAGE_ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", _WRITER, str(folder)], capture_output=True, text=True, timeout=300, env=env, check=True
    )
    return folder, json.loads(done.stdout.strip().splitlines()[-1])


def as_pairs(rows: list[list[Any]]) -> list[tuple[str, tuple[int, ...]]]:
    return [(name, tuple(shape)) for name, shape in rows]


@pytest.mark.parametrize("name", ["zip.pt", "legacy.pt", "wrapped.pt", "raw.pkl"])
def test_whole_model_pickle_of_a_class_not_importable_here(hidden_model, name: str):
    folder, truth = hidden_model
    assert importlib.util.find_spec("hidden_models_x") is None  # the reading process cannot import it
    found = read_pickled(folder / name)
    assert "hidden_models_x.Tagger" in found.stand_ins
    located = find_module(found.root)
    assert located is not None
    tree, where = located
    assert where == ("model" if name == "wrapped.pt" else "")
    assert "hidden_models_x" not in sys.modules
    # the split of parameters and buffers, the tree and its classes, exactly as the live model has them
    assert shapes(tree.named_parameters()) == as_pairs(truth["parameters"])
    assert shapes(tree.named_buffers()) == as_pairs(truth["buffers"])
    assert shapes(tree.state_dict().items()) == as_pairs(truth["state_dict"])
    assert [(path, m.class_name) for path, m in tree.named_modules()] == [tuple(row) for row in truth["modules"]]
    assert sum(t.numel for _, t in tree.named_parameters()) == truth["total"]
    recurrent = {}
    for path, module in tree.named_modules():
        settings = recurrent_settings(module)
        if settings is not None:
            recurrent[path] = dict(settings.settings)
    assert recurrent == truth["recurrent"]
    sub = recurrent_settings(dict(tree.named_modules())["sub"])
    assert sub is not None and (sub.kind, sub.from_class) == ("LSTM", False)  # a user subclass: kind from `mode`
    assert tree.non_persistent == {"mask"}
    assert list(tree.tensors) == ["scale"]
    assert tree.children["shared"] is tree.children["gru"]


def test_whole_model_settings_of_each_recurrent_kind(hidden_model):
    folder, _ = hidden_model
    located = find_module(read_pickled(folder / "zip.pt").root)
    assert located is not None
    modules = dict(located[0].named_modules())
    kinds = {path: (s.kind, s.from_class) for path, m in modules.items() if (s := recurrent_settings(m)) is not None}
    assert kinds == {
        "encoder": ("LSTM", True),
        "gru": ("GRU", True),
        "rnn": ("RNN", True),
        "cells.0": ("LSTMCell", True),
        "cells.1": ("GRUCell", True),
        "cells.2": ("RNNCell", True),
        "sub": ("LSTM", False),
    }
    assert recurrent_settings(modules["norm"]) is None and recurrent_settings(modules[""]) is None


# -- Lightning ---------------------------------------------------------------------------------------

_LIGHTNING_READER = r"""
import json, sys
from torchlstm_params.unpickle import read_pickled
from torchlstm_params.pickled import find_state_dict
imports = []
sys.addaudithook(lambda event, args: imports.append(args[0]) if event == "import" else None)
found = read_pickled(sys.argv[1])
state = find_state_dict(found.root)
print(json.dumps({"imports": imports, "where": state.where, "lightning": "lightning" in sys.modules}))
"""


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")  # Lightning's advice about workers, logging and hparams
@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")  # Lightning's use of a torch API 2.13 deprecates
def test_lightning_checkpoint_with_optimizer_and_hyper_parameters(tmp_path: Path):
    pl = pytest.importorskip("lightning.pytorch", reason="the lightning package is not installed")
    from torch.utils.data import DataLoader, TensorDataset

    class Tagger(pl.LightningModule):  # type: ignore[misc,name-defined]
        def __init__(self, hidden: int = 8, lr: float = 0.01, optimizer_cls: type = torch.optim.Adam) -> None:
            super().__init__()
            self.save_hyperparameters()  # optimizer_cls pickles as a global, as darts' checkpoints do
            self.rnn = nn.LSTM(4, hidden, batch_first=True)
            self.head = nn.Linear(hidden, 2)

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            x, y = batch
            out, _ = self.rnn(x)
            return nn.functional.cross_entropy(self.head(out[:, -1]), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return self.hparams.optimizer_cls(self.parameters(), lr=self.hparams.lr)

        def train_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
            return DataLoader(TensorDataset(torch.randn(8, 5, 4), torch.randint(0, 2, (8,))), batch_size=4)

    model = Tagger()
    trainer = pl.Trainer(
        max_steps=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model)
    path = tmp_path / "tagger.ckpt"
    trainer.save_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError, match=r"torch\.optim\.adam\.Adam"):
        torch.load(path, weights_only=True)  # the refusal issue 15 reports

    found = read_pickled(path)
    assert found.stand_ins == ("torch.optim.adam.Adam",)
    state = find_state_dict(found.root)
    assert state is not None and state.where == "state_dict"
    assert shapes(state.tensors.items()) == shapes(model.state_dict().items())
    assert not tie_groups(state.tensors)
    root = found.root
    assert isinstance(root, dict)
    assert root["global_step"] == 1
    hparams = root["hyper_parameters"]
    assert (hparams["hidden"], hparams["lr"]) == (8, 0.01)
    adam = hparams["optimizer_cls"]
    assert isinstance(adam, type) and issubclass(adam, PickledObject)
    assert adam.qualified_name == "torch.optim.adam.Adam"
    optimizer = root["optimizer_states"][0]
    params = list(model.parameters())
    assert optimizer["param_groups"][0]["params"] == list(range(len(params)))
    assert optimizer["param_groups"][0]["lr"] == 0.01
    for index, param in enumerate(params):
        slots = optimizer["state"][index]
        assert tuple(slots["exp_avg"].shape) == tuple(param.shape)
        assert tuple(slots["exp_avg_sq"].shape) == tuple(param.shape)
        assert slots["step"].shape == ()
    env = {**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _LIGHTNING_READER, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"imports": [], "where": "state_dict", "lightning": False}


# -- TorchScript ------------------------------------------------------------------------------------


class Scripted(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(12, 6)
        self.encoder = nn.LSTM(6, 10, num_layers=2, bidirectional=True, proj_size=3, batch_first=True)
        self.cells = nn.ModuleList([nn.GRUCell(6, 4), nn.GRUCell(6, 5)])
        self.head = nn.Linear(6, 2)
        self.register_buffer("mask", torch.ones(6))
        self.frozen = nn.Parameter(torch.zeros(2), requires_grad=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.encoder(self.embed(tokens) * self.mask)
        return self.head(out[:, -1, :6])


@_JIT_DEPRECATED
def test_torchscript_archive_tree_and_settings(tmp_path: Path):
    model = Scripted()
    archive = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(model), archive)
    found = read_pickled(archive)
    assert found.format == "torch.jit.save"
    assert all(name.startswith("__torch__.") for name in found.stand_ins)
    located = find_module(found)  # the file's TorchScript classes come with it
    assert located is not None and located[1] == ""
    assert find_module(found.root) is None  # without them, a TorchScript object is no nn.Module
    tree = located[0]
    assert tree.scripted
    assert shapes(tree.named_parameters()) == shapes(model.named_parameters())
    assert shapes(tree.named_buffers()) == shapes(model.named_buffers())
    live = dict(model.named_modules())
    assert [path for path, _ in tree.named_modules()] == list(live)
    for path, module in tree.named_modules():
        real = live[path]
        assert module.class_name == f"{type(real).__module__}.{type(real).__qualname__}"
        settings = recurrent_settings(module)
        if isinstance(real, (nn.RNNBase, nn.RNNCellBase)):
            assert settings is not None and settings.from_class
            assert dict(settings.settings) == {k: getattr(real, k) for k in RECURRENT_KEYS if hasattr(real, k)}
        else:
            assert settings is None
    requires_grad = {name: t.requires_grad for name, t in tree.named_parameters()}
    assert requires_grad == {name: p.requires_grad for name, p in model.named_parameters()}


# -- ties by storage identity -----------------------------------------------------------------------


def test_meta_state_dict_has_no_false_ties(tmp_path: Path):
    """Issue 15 item 9: every meta tensor has address 0; only a real storage identity may tie tensors."""
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8), nn.LSTM(8, 8), nn.LSTM(8, 8))
    path = tmp_path / "meta.pt"
    torch.save(model.state_dict(), path)
    assert len({t.data_ptr() for t in torch.load(path, weights_only=True).values()}) == 1  # all addresses 0
    state = find_state_dict(read_pickled(path).root)
    assert state is not None
    assert tie_groups(state.tensors) == []
    assert sum(t.numel for t in state.tensors.values()) == sum(p.numel() for p in model.parameters()) == 1296
    rebuilt = meta_tensors(state.tensors)
    storages = {id(t.untyped_storage()) for t in rebuilt.values()}
    assert len(storages) == len(rebuilt)  # one storage each: no false sharing either


def test_cpu_state_dict_of_the_same_model_has_no_ties(tmp_path: Path):
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8), nn.LSTM(8, 8), nn.LSTM(8, 8))
    torch.save(model.state_dict(), tmp_path / "cpu.pt")
    state = find_state_dict(read_pickled(tmp_path / "cpu.pt").root)
    assert state is not None and tie_groups(state.tensors) == []


class TiedLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 6)
        self.rnn = nn.LSTM(6, 6)
        self.decoder = nn.Linear(6, 20)
        self.decoder.weight = self.embed.weight


@pytest.mark.parametrize("legacy", [False, True])
def test_tied_weights_are_found_by_storage_key(tmp_path: Path, legacy: bool):
    model = TiedLM()
    path = tmp_path / "tied.pt"
    torch.save(model.state_dict(), path, _use_new_zipfile_serialization=not legacy)
    state = find_state_dict(read_pickled(path).root)
    assert state is not None
    assert tie_groups(state.tensors) == [("embed.weight", "decoder.weight")]
    real = torch.load(path, weights_only=True)
    assert real["embed.weight"].data_ptr() == real["decoder.weight"].data_ptr()  # torch agrees
    rebuilt = meta_tensors(state.tensors)
    assert rebuilt["embed.weight"].untyped_storage() is rebuilt["decoder.weight"].untyped_storage()
    assert rebuilt["rnn.weight_ih_l0"].untyped_storage() is not rebuilt["embed.weight"].untyped_storage()


def test_views_of_one_storage_are_not_ties(tmp_path: Path):
    """Weights flattened into one buffer (as cuDNN does) share a storage but are different tensors."""
    flat = torch.zeros(40)
    views = {"a": flat[:16].view(4, 4), "b": flat[16:32].view(4, 4), "c": flat[:16].view(4, 4), "d": flat[32:]}
    torch.save(views, tmp_path / "flat.pt")
    state = find_state_dict(read_pickled(tmp_path / "flat.pt").root)
    assert state is not None
    assert tie_groups(state.tensors) == [("a", "c")]
    keys = {t.storage.key for t in state.tensors.values() if t.storage is not None}
    assert len(keys) == 1
    real = torch.load(tmp_path / "flat.pt", weights_only=True)
    assert real["a"].data_ptr() == real["c"].data_ptr() != real["b"].data_ptr()
    rebuilt = meta_tensors(state.tensors)
    assert [tuple(t.shape) for t in rebuilt.values()] == [tuple(t.shape) for t in real.values()]
    assert [t.storage_offset() for t in rebuilt.values()] == [t.storage_offset() for t in real.values()]


def test_whole_model_ties_are_one_object(tmp_path: Path):
    torch.save(TiedLM(), tmp_path / "tied_model.pt")
    located = find_module(read_pickled(tmp_path / "tied_model.pt").root)
    assert located is not None
    tree = located[0]
    assert tree.children["decoder"].parameters["weight"] is tree.children["embed"].parameters["weight"]
    assert [name for name, _ in tree.named_parameters()] == [name for name, _ in TiedLM().named_parameters()]
    assert list(tree.state_dict()) == list(TiedLM().state_dict())


# -- finding things, and files that only look like modules ------------------------------------------


@pytest.mark.parametrize("key", ["state_dict", "model_state_dict", "model", "module", "net"])
def test_state_dict_found_under_the_usual_keys(tmp_path: Path, key: str):
    model = TiedLM()
    torch.save({"epoch": 3, "nested": {"x": 1}, key: model.state_dict()}, tmp_path / "c.pt")
    state = find_state_dict(read_pickled(tmp_path / "c.pt").root)
    assert state is not None and state.where == key
    assert list(state.tensors) == list(model.state_dict())


def test_state_dict_reports_entries_that_are_not_tensors(tmp_path: Path):
    torch.save({"w": torch.zeros(2), "_extra_state": {"scale": 2}}, tmp_path / "extra.pt")
    state = find_state_dict(read_pickled(tmp_path / "extra.pt").root)
    assert state is not None and list(state.tensors) == ["w"] and state.others == ("_extra_state",)


def test_no_state_dict_and_no_module(tmp_path: Path):
    torch.save({"epoch": 3, "config": {"lr": 0.1}}, tmp_path / "none.pt")
    root = read_pickled(tmp_path / "none.pt").root
    assert find_state_dict(root) is None and find_module(root) is None
    with pytest.raises(CheckpointError, match=r"is not a pickled nn\.Module"):
        module_tree(root)


def _self_containing_module() -> bytes:
    """A pickled 'module' whose _modules holds itself (memo GET), written opcode by opcode."""

    def text(value: str) -> bytes:
        return b"X" + len(value.encode()).to_bytes(4, "little") + value.encode()

    return (
        b"\x80\x02cevil\nLoop\n)\x81q\x00}("  # NEWOBJ, memo 0, state dict
        + text("_parameters")
        + b"}"
        + text("_modules")
        + b"}"
        + text("me")
        + b"h\x00s"  # _modules = {"me": <memo 0>}
        + b"ub."
    )


def test_module_containing_itself_is_refused(tmp_path: Path):
    path = tmp_path / "loop.pt"
    path.write_bytes(_self_containing_module())
    root = read_pickled(path).root
    with pytest.raises(CheckpointError, match=r"module evil\.Loop contains itself \(through 'me'\)"):
        module_tree(root)


def test_deeply_nested_modules_need_no_recursion(tmp_path: Path):
    model: nn.Module = nn.Linear(2, 2)
    for _ in range(1500):  # deeper than Python's recursion limit
        model = nn.Sequential(model)
    path = tmp_path / "deep.pt"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20000)  # only torch.save needs it
    try:
        torch.save(model, path)
    finally:
        sys.setrecursionlimit(limit)
    located = find_module(read_pickled(path).root)
    assert located is not None
    tree: PickledModule = located[0]
    names = [name for name, _ in tree.named_parameters()]
    assert names == [".".join(["0"] * 1500 + ["weight"]), ".".join(["0"] * 1500 + ["bias"])]


def test_plain_settings_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Plain attributes are settings; a function attribute (torch.tanh) stays an inert record."""
    source = textwrap.dedent(
        """
        import torch
        from torch import nn
        class WithAttributes(nn.Module):
            def __init__(self):
                super().__init__()
                self.size = 4
                self.sizes = (1, 2)
                self.activation = torch.tanh
                self.lookup = {"a": 1}
        """
    )
    module = types.ModuleType("attr_mod_y")  # importable only while saving
    exec(compile(source, "attr_mod_y.py", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, "attr_mod_y", module)
    torch.save(module.WithAttributes(), tmp_path / "attrs.pt")
    monkeypatch.delitem(sys.modules, "attr_mod_y")
    tree = module_tree(read_pickled(tmp_path / "attrs.pt").root)
    assert dict(tree.settings) == {"training": True, "size": 4, "sizes": (1, 2), "lookup": {"a": 1}}
    activation = tree.state["activation"]  # pickled as getattr(torch._VariableFunctionsClass, "tanh")
    assert isinstance(activation, PickledObject) and activation.qualified_name == "builtins.getattr"
    assert activation.args[1] == "tanh" and activation.built == "call"


def test_hostile_module_state_is_not_a_module(tmp_path: Path):
    """A 'module' whose state is a record with an unhashable key: no module, no exception."""

    def text(value: str) -> bytes:
        return b"X" + len(value.encode()).to_bytes(4, "little") + value.encode()

    record = b"cevil\nD\n)\x81(]" + text("v") + b"u"  # a stand-in D with D[[]] = "v"
    state = b"N" + record + b"\x86"  # BUILD state (None, D): D as the slots part
    path = tmp_path / "odd.pkl"
    path.write_bytes(b"\x80\x02cevil\nMod\n)\x81" + state + b"b.")
    found = read_pickled(path)
    assert find_module(found) is None and find_state_dict(found) is None
    with pytest.raises(CheckpointError, match=r"is not a pickled nn\.Module"):
        module_tree(found.root)


# torch 2.13 deprecates torch.ao.quantization and warns about quantized tensor creation.
@pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor.*:UserWarning")
def test_dynamic_quantized_lstm_keeps_its_settings(tmp_path: Path):
    model = torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.LSTM(4, 8, num_layers=2)), {nn.LSTM})
    torch.save(model, tmp_path / "quantized.pt")
    located = find_module(read_pickled(tmp_path / "quantized.pt"))
    assert located is not None
    lstm = located[0].children["0"]
    assert lstm.class_name == "torch.ao.nn.quantized.dynamic.modules.rnn.LSTM"
    settings = recurrent_settings(lstm)
    assert settings is not None and (settings.kind, settings.from_class) == ("LSTM", True)
    live = model[0]
    assert dict(settings.settings) == {k: getattr(live, k) for k in RECURRENT_KEYS if hasattr(live, k)}
    assert lstm.parameters == {}  # its weights sit in packed ScriptObjects, recorded inert in its state
