"""The safe reader on real files: hostile pickles never run, tensor records match what torch.load rebuilds."""

from __future__ import annotations

import copyreg
import io
import json
import os
import pickle
import re
import subprocess
import sys
import tarfile
import textwrap
import time
import zipfile
from collections import OrderedDict, defaultdict
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import torchlstm_params
from torchlstm_params.errors import CheckpointError, TorchLstmParamsError
from torchlstm_params.unpickle import PickledObject, PickledTensor, read_pickled

SUFFIXES = [".pt", ".pkl", ".ckpt", ""]
PACKAGE_ROOT = Path(torchlstm_params.__file__).resolve().parents[1]


class Reduce:
    """Pickles as ``func(*args)``: how a hostile file makes an unpickler call anything."""

    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return self.func, self.args


def _unicode(text: str) -> bytes:
    data = text.encode()
    return b"X" + len(data).to_bytes(4, "little") + data


def getattr_chain(marker: Path) -> bytes:
    """``getattr(__import__("os"), "system")("touch marker")``, in hand-written protocol-2 opcodes."""
    return (
        b"\x80\x02cbuiltins\ngetattr\n"
        + b"cbuiltins\n__import__\n"
        + _unicode("os")
        + b"\x85R"  # TUPLE1 REDUCE: __import__("os")
        + _unicode("system")
        + b"\x86R"  # TUPLE2 REDUCE: getattr(os, "system")
        + _unicode(f"touch {marker}")
        + b"\x85R."  # TUPLE1 REDUCE: system("touch ..."); STOP
    )


def inst_opcode(marker: Path) -> bytes:
    """Protocol 0's INST opcode: ``os.system("touch marker")`` without REDUCE."""
    return f"(S'touch {marker}'\nios\nsystem\n.".encode()


def payloads(folder: Path, plant: str) -> dict[str, tuple[bytes, Path]]:
    """Each payload pickled three ways (raw, torch.save zip, legacy torch.save), with its own marker."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, tuple[bytes, Path]] = {}

    def marker(name: str) -> Path:
        return folder / f"marker-{name}"

    objects = {
        "os.system": Reduce(os.system, f"touch {marker('os.system')}"),
        "eval": Reduce(eval, f"open({str(marker('eval'))!r}, 'w').close()"),
        "exec": Reduce(exec, f"open({str(marker('exec'))!r}, 'w').close()"),
        "popen": Reduce(subprocess.Popen, [sys.executable, "-c", f"open({str(marker('popen'))!r}, 'w').close()"]),
    }
    for name, obj in objects.items():
        out[f"{name}-raw"] = (pickle.dumps(obj, protocol=2), marker(name))
        out[f"{name}-raw5"] = (pickle.dumps({"weights": obj}, protocol=5), marker(name))
        buffer = io.BytesIO()
        torch.save({"weight": torch.zeros(3), "payload": obj}, buffer)
        out[f"{name}-zip"] = (buffer.getvalue(), marker(name))
        buffer = io.BytesIO()
        torch.save({"weight": torch.zeros(3), "payload": obj}, buffer, _use_new_zipfile_serialization=False)
        out[f"{name}-legacy"] = (buffer.getvalue(), marker(name))
    out["getattr-chain"] = (getattr_chain(marker("getattr")), marker("getattr"))
    out["inst-opcode"] = (inst_opcode(marker("inst")), marker("inst"))
    # A module whose import alone creates the marker: the reader must not even import what a file names.
    out["import"] = (b"\x80\x02c" + plant.encode() + b"\nAnything\n)\x81}b.", folder / "marker-import")
    return out


def write_plant(folder: Path, name: str, marker: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Anything:\n    pass\n")


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_hostile_pickles_never_run(tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch):
    plant = f"plant_{suffix.strip('.') or 'none'}_{os.getpid()}"
    write_plant(tmp_path / "src", plant, tmp_path / "files" / "marker-import")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))  # importable: only not importing it keeps the marker away
    found: dict[str, tuple[str, ...]] = {}
    for name, (data, _) in payloads(tmp_path / "files", plant).items():
        path = tmp_path / "files" / f"{name}{suffix}"
        path.write_bytes(data)
        found[name] = read_pickled(path).stand_ins  # read, not refused: the payloads are inert records
    time.sleep(0.5)  # a process Popen had started would have written its marker by now
    assert sorted(p.name for p in (tmp_path / "files").glob("marker-*")) == []
    assert plant not in sys.modules
    # Every payload was read (not refused) and its callable recorded by name, never called.
    for kind, name in [("os.system", "posix.system"), ("eval", "builtins.eval"), ("exec", "builtins.exec")]:
        for how in ("raw", "raw5", "zip", "legacy"):
            assert name in found[f"{kind}-{how}"], (kind, how)
    assert "subprocess.Popen" in found["popen-zip"]
    assert found["getattr-chain"] == ("builtins.getattr", "builtins.__import__")
    assert found["inst-opcode"] == ("os.system",)
    assert found["import"] == (f"{plant}.Anything",)


@pytest.mark.slow
def test_the_payloads_are_live(tmp_path: Path):
    """Control: plain pickle.load / torch.load(weights_only=False) do create every marker."""
    plant = f"plant_live_{os.getpid()}"
    write_plant(tmp_path / "src", plant, tmp_path / "files" / "marker-import")
    cases = payloads(tmp_path / "files", plant)
    for name, (data, _) in cases.items():
        (tmp_path / "files" / name).write_bytes(data)
    script = textwrap.dedent(
        """
        import pickle, sys, time, torch
        from pathlib import Path
        sys.path.insert(0, sys.argv[2])
        for path in sorted(Path(sys.argv[1]).iterdir()):
            if path.name.startswith("marker-"):
                continue
            if path.name.endswith(("-zip", "-legacy")):
                torch.load(path, weights_only=False)
            else:
                pickle.loads(path.read_bytes())
        """
    )
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "files"), str(tmp_path / "src")],
        check=False,
        capture_output=True,
        timeout=120,
    )
    expected = sorted({marker.name for _, marker in cases.values()})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and sorted(p.name for p in (tmp_path / "files").glob("marker-*")) != expected:
        time.sleep(0.1)  # Popen's child writes its marker on its own time
    assert sorted(p.name for p in (tmp_path / "files").glob("marker-*")) == expected


_AUDIT = textwrap.dedent(
    """
    import json, sys
    from torchlstm_params.unpickle import read_pickled
    from torchlstm_params.pickled import find_module, find_state_dict
    events = []
    watching = False
    def hook(event, args):
        # open: the files themselves; builtins.id: the tree builder's own id() calls
        if watching and event not in ("open", "builtins.id"):
            events.append(event if event != "import" else f"import {args[0]}")
    sys.addaudithook(hook)
    before = set(sys.modules)
    for path in sys.argv[1:]:
        watching = True
        try:
            found = read_pickled(path)
            find_module(found.root, found.script_classes)
            find_state_dict(found.root)
        except Exception as exc:
            events.append(f"refused {type(exc).__name__}")
        watching = False
    print(json.dumps({"events": sorted(set(events)), "new_modules": sorted(set(sys.modules) - before)}))
    """
)


# torch 2.13 deprecates TorchScript; its archives are still what users have on disk.
_JIT_DEPRECATED = pytest.mark.filterwarnings("ignore:`torch.jit.(script|save)` is deprecated:DeprecationWarning")


@_JIT_DEPRECATED
def test_reading_imports_and_runs_nothing_audit_hook(tmp_path: Path):
    """Python's audit hooks see every import, exec, os.system and process start while the files are read."""
    plant = f"plant_audit_{os.getpid()}"
    write_plant(tmp_path / "src", plant, tmp_path / "files" / "marker-import")
    paths = []
    for name, (data, _) in payloads(tmp_path / "files", plant).items():
        paths.append(tmp_path / "files" / f"{name}.pt")
        paths[-1].write_bytes(data)
    model = nn.Sequential(nn.LSTM(3, 4), nn.Linear(4, 2))
    torch.save(model, tmp_path / "model.pt")
    torch.jit.save(torch.jit.script(nn.Sequential(nn.Linear(3, 4))), tmp_path / "scripted.pt")
    paths += [tmp_path / "model.pt", tmp_path / "scripted.pt"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE_ROOT), str(tmp_path / "src")])}
    command = [sys.executable, "-c", _AUDIT, *map(str, paths)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # "compile": ast.parse of the TorchScript archive's code (parsed to read its declarations, never run).
    assert report["events"] == ["compile"]
    assert report["new_modules"] == []
    assert not list((tmp_path / "files").glob("marker-*"))


# -- tensor records against torch.load ----------------------------------------------------------------


def root_dict(path: Path) -> dict[str, Any]:
    root = read_pickled(path).root
    assert isinstance(root, dict)
    return root


def tensor_zoo() -> dict[str, torch.Tensor]:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    return {
        "param": nn.Parameter(torch.randn(3, 5)),
        "frozen": nn.Parameter(torch.randn(2), requires_grad=False),
        "grad": torch.randn(4, requires_grad=True),
        "half": torch.randn(2, 3, dtype=torch.float16),
        "bf16": torch.randn(7, dtype=torch.bfloat16),
        "long": torch.arange(5),
        "bool": torch.tensor([True, False]),
        "complex": torch.randn(3, dtype=torch.complex64),
        "uint16": torch.zeros(6, dtype=torch.uint16),  # a v3 dtype: untyped storage plus a dtype argument
        "fp8": torch.zeros(4, dtype=torch.float8_e4m3fn),
        "transposed": base.t(),
        "row": base[2],
        "column": base[:, 3],
        "same_as_row": base[2],
        "expanded": torch.ones(1, 3).expand(4, 3),
        "scalar": torch.tensor(3.5),
        "empty": torch.empty(0, 3),
    }


def check_against_torch(found: dict[str, PickledTensor], loaded: dict[str, torch.Tensor]) -> None:
    assert list(found) == list(loaded)
    for name, real in loaded.items():
        record = found[name]
        assert record.shape == tuple(real.shape), name
        assert record.dtype == real.dtype, name
        assert record.stride == real.stride(), name
        assert record.storage_offset == real.storage_offset(), name
        assert record.requires_grad == real.requires_grad, name
        assert record.parameter == isinstance(real, nn.Parameter), name
        assert record.storage is not None
        assert record.storage.nbytes == real.untyped_storage().nbytes(), name
    for a in loaded:  # same storage key exactly when torch.load gives the same storage
        for b in loaded:
            same = loaded[a].untyped_storage().data_ptr() == loaded[b].untyped_storage().data_ptr()
            key_a, key_b = found[a].storage, found[b].storage
            assert key_a is not None and key_b is not None
            assert (key_a.key == key_b.key) == same, (a, b)


@pytest.mark.parametrize("how", ["zip", "zip-protocol4", "zip-protocol5", "legacy", "legacy-protocol4"])
def test_tensor_records_match_torch_load(tmp_path: Path, how: str):
    zoo = tensor_zoo()
    if how.startswith("legacy"):  # torch.load cannot read its own legacy files with these (no oracle)
        del zoo["uint16"], zoo["fp8"]
    path = tmp_path / "zoo.pt"
    protocol = int(how[-1]) if "protocol" in how else 2
    torch.save(zoo, path, pickle_protocol=protocol, _use_new_zipfile_serialization=how.startswith("zip"))
    found = read_pickled(path)
    assert found.format == ("torch.save" if how.startswith("zip") else "torch.save-legacy")
    assert found.stand_ins == ()  # nothing but tensors, dicts and torch's own rebuild functions
    assert isinstance(found.root, dict)
    # The oracle is torch.load trusting the file (we wrote it): weights_only=True refuses protocol 4's
    # FRAME opcode ("Unsupported operand 149"), which is how flair's checkpoints get refused.
    check_against_torch(found.root, torch.load(path, weights_only=False))


def test_plain_pickle_of_tensors_matches_pickle_load(tmp_path: Path):
    """pickle.dump of tensors: each storage is pickled as its own legacy torch.save stream."""
    zoo = {k: v for k, v in tensor_zoo().items() if k not in {"uint16", "fp8"}}
    path = tmp_path / "zoo.pkl"
    path.write_bytes(pickle.dumps(zoo))
    assert read_pickled(path).format == "pickle"
    found = root_dict(path)
    loaded = pickle.loads(path.read_bytes())
    for name, real in loaded.items():
        record = found[name]
        assert (record.shape, record.dtype, record.stride) == (tuple(real.shape), real.dtype, real.stride())
        assert record.storage_offset == real.storage_offset()
        assert record.storage is not None and record.storage.nbytes == real.untyped_storage().nbytes()
    # plain pickle copies each tensor's storage: no two names share one, in torch as here
    assert len({t.storage.key for t in found.values()}) == len(loaded)
    assert len({t.untyped_storage().data_ptr() for t in loaded.values()}) == len(loaded)


def test_meta_tensors_are_recorded_without_storage(tmp_path: Path):
    with torch.device("meta"):
        model = nn.LSTM(8, 8)
    torch.save(model.state_dict(), tmp_path / "meta.pt")
    found = root_dict(tmp_path / "meta.pt")
    loaded = torch.load(tmp_path / "meta.pt", weights_only=True)
    for name, real in loaded.items():
        assert real.is_meta and real.data_ptr() == 0  # why addresses cannot tell ties apart here
        record = found[name]
        assert (record.shape, record.stride, record.device, record.storage) == (
            tuple(real.shape),
            real.stride(),
            "meta",
            None,
        )
        assert record.tie_key is None


def test_quantized_tensor_records_its_quantizer(tmp_path: Path):
    q = torch.quantize_per_tensor(torch.randn(4, 3), scale=0.5, zero_point=3, dtype=torch.qint8)
    torch.save({"q": q}, tmp_path / "q.pt")
    record = root_dict(tmp_path / "q.pt")["q"]
    assert (record.shape, record.dtype) == ((4, 3), torch.qint8)
    assert record.quantizer == (torch.per_tensor_affine, 0.5, 3)


pytestmark_quantized = pytest.mark.filterwarnings("ignore:.*quantized tensor creation.*:UserWarning")
test_quantized_tensor_records_its_quantizer = pytestmark_quantized(test_quantized_tensor_records_its_quantizer)


# -- refusals: one clear line ------------------------------------------------------------------------


def write_archive(path: Path, pickled: bytes, records: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/version", "3\n")  # what torch.save 2.x writes; torch.load requires it
        for key, data in records.items():
            archive.writestr(f"archive/data/{key}", data)


class StoragePickler(pickle.Pickler):
    """Pickles the string "STORAGE" as torch.save's persistent id of a 4-float storage with key "0"."""

    def persistent_id(self, obj: object) -> object:
        if isinstance(obj, str) and obj == "STORAGE":
            return ("storage", torch.FloatStorage, "0", "cpu", 4)
        return None


def tensor_pickle(size: tuple[int, ...], stride: tuple[int, ...], offset: int = 0) -> bytes:
    buffer = io.BytesIO()
    args: tuple[object, ...] = ("STORAGE", offset, size, stride, False, OrderedDict())
    StoragePickler(buffer, protocol=2).dump({"w": Reduce(torch._utils._rebuild_tensor_v2, *args)})
    return buffer.getvalue()


def test_crafted_archive_reads_like_torch(tmp_path: Path):
    path = tmp_path / "ok.pt"
    write_archive(path, tensor_pickle((2, 2), (2, 1)), {"0": bytes(16)})
    record = root_dict(path)["w"]
    assert (record.shape, record.storage.key, record.storage.nbytes) == ((2, 2), "0", 16)
    assert tuple(torch.load(path, weights_only=True)["w"].shape) == (2, 2)


@pytest.mark.parametrize(
    ("size", "stride", "offset", "data", "message"),
    [
        ((3, 2), (2, 1), 0, bytes(16), "needs 6 elements; storage '0' holds 4"),
        ((2,), (1,), 3, bytes(16), "needs 5 elements"),
        ((2, 2), (2, 1), 0, bytes(8), "holds 8 bytes, the file declares 16 (truncated?)"),
        ((2, 2), (2, 1), 0, None, "storage '0' has no data/0 record"),
        ((2, -1), (2, 1), 0, bytes(16), "size -1"),
    ],
)
def test_inconsistent_tensor_records_are_refused(tmp_path, size, stride, offset, data, message):
    path = tmp_path / "bad.pt"
    write_archive(path, tensor_pickle(size, stride, offset), {} if data is None else {"0": data})
    with pytest.raises(CheckpointError, match=re.escape(message)) as info:
        read_pickled(path)
    assert "\n" not in str(info.value) and isinstance(info.value, TorchLstmParamsError)
    with pytest.raises(Exception):  # noqa: B017, PT011 - torch.load refuses the same file, in its own words
        torch.load(path, weights_only=True)


def test_extension_codes_are_refused(tmp_path: Path):
    path = tmp_path / "ext.pkl"
    marker = tmp_path / "marker"
    path.write_bytes(b"\x80\x02\x82\xf0" + _unicode(f"touch {marker}") + b"\x85R.")
    with pytest.raises(CheckpointError, match="extension code"):
        read_pickled(path)
    copyreg.add_extension("os", "system", 0xF0)  # registered: would resolve without find_class
    try:
        with pytest.raises(CheckpointError, match=r"pickle extension code \(EXT1\) found"):
            read_pickled(path)
    finally:
        copyreg.remove_extension("os", "system", 0xF0)
    assert not marker.exists()


def test_out_of_band_buffers_are_refused(tmp_path: Path):
    path = tmp_path / "oob.pkl"
    path.write_bytes(pickle.dumps(pickle.PickleBuffer(b"abc"), protocol=5, buffer_callback=lambda _: False))
    with pytest.raises(CheckpointError, match="out-of-band"):
        read_pickled(path)


@pytest.mark.parametrize(
    ("target", "name"),
    [
        (b"ctorch._utils\n_rebuild_tensor_v2\n", "torch._utils._rebuild_tensor_v2"),  # would set __defaults__
        (b"ctorch\nFloatStorage\n", "torch.FloatStorage"),
        (b"c_codecs\nencode\n", "_codecs.encode"),
    ],
)
def test_build_cannot_reach_the_allow_list(tmp_path: Path, target: bytes, name: str):
    """BUILD (setting attributes) on an allow-listed callable is refused: nothing of ours is mutated."""
    path = tmp_path / "build.pkl"
    slot_state = b"N}" + _unicode("__defaults__") + b")s\x86"  # (None, {"__defaults__": ()})
    path.write_bytes(b"\x80\x02" + target + slot_state + b"b.")
    with pytest.raises(CheckpointError, match=re.escape(f"the file sets attributes of {name}")):
        read_pickled(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"this is not a pickle", "cannot be read safely"),
        (b"PK\x03\x04 truncated zip", r"not a readable torch zip archive \(truncated or corrupt\?\): .*not a ZIP"),
        (b"\x80\x02K\x01", r"ends before its STOP opcode \(truncated\?\)"),
    ],
)
def test_unreadable_files_give_one_line(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as info:
        read_pickled(path)
    assert "\n" not in str(info.value)


def test_missing_and_directory_and_tar(tmp_path: Path):
    with pytest.raises(CheckpointError, match="no such file"):
        read_pickled(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="is not a file"):
        read_pickled(tmp_path)
    path = tmp_path / "old.tar"
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo("storages")
        archive.addfile(info, io.BytesIO(b""))
    with pytest.raises(CheckpointError, match="tar archive"):
        read_pickled(path)


def test_zip_without_data_pkl_is_refused(tmp_path: Path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("folder/readme.txt", "hello")
    with pytest.raises(CheckpointError, match="not a readable torch zip archive"):  # no version record
        read_pickled(path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("folder/version", "3\n")
    with pytest.raises(CheckpointError, match=r"a zip archive without data\.pkl"):
        read_pickled(path)


class Holder:
    def __init__(self) -> None:
        self.value = 3


class KeywordNew:
    def __getnewargs_ex__(self) -> tuple[tuple[object, ...], dict[str, object]]:
        return (1, 2), {"size": 3}


class Items(list[int]):
    pass


def test_stand_ins_record_calls_state_and_items(tmp_path: Path):
    """What a stand-in keeps: arguments of REDUCE and NEWOBJ_EX, BUILD state, appended and set items."""
    path = tmp_path / "objects.pkl"
    data = {
        "holder": Holder(),
        "new_ex": KeywordNew(),
        "call": Reduce(print, "hi"),
        "items": Items([4, 5]),
        "default": defaultdict(list, {"k": [1]}),
        "plain": {"a": 1},
    }
    path.write_bytes(pickle.dumps(data, protocol=4))
    root = root_dict(path)
    holder, new_ex, call = root["holder"], root["new_ex"], root["call"]
    assert isinstance(holder, PickledObject) and holder.qualified_name == f"{__name__}.Holder"
    assert (holder.built, holder.state) == ("new", {"value": 3})
    assert (new_ex.built, new_ex.args, new_ex.kwargs) == ("new", (1, 2), {"size": 3})
    assert (call.qualified_name, call.built, call.args) == ("builtins.print", "call", ("hi",))
    assert root["items"].listitems == [4, 5]
    assert root["default"].qualified_name == "collections.defaultdict"
    assert root["default"].dictitems == [("k", [1])]
    assert root["plain"] == {"a": 1}


def test_file_names_that_are_not_utf8(tmp_path: Path):
    """A name a browser or an old file system gives (undecodable bytes) still reads, zip and legacy alike."""
    for legacy in (False, True):
        name = os.fsdecode(bytes(tmp_path) + (b"/legacy-\xff.pt" if legacy else b"/model-\xff.pt"))
        torch.save({"w": torch.zeros(2, 3)}, name, _use_new_zipfile_serialization=not legacy)
        found = read_pickled(name)
        assert isinstance(found.root, dict) and found.root["w"].shape == (2, 3)


def test_bytes_after_a_plain_pickle_are_noted(tmp_path: Path):
    path = tmp_path / "two.pkl"
    path.write_bytes(pickle.dumps({"a": 1}) + pickle.dumps({"b": 2}))
    found = read_pickled(path)
    assert found.root == {"a": 1}
    assert found.notes == (f"{len(pickle.dumps({'b': 2})):,} bytes after the first pickle were not read",)
