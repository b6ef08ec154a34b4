"""The safetensors header read here: real files written by the safetensors package, in storage order."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from torchlstm_params.errors import CheckpointError
from torchlstm_params.safetensors_file import read_safetensors_header


def raw_header(path: Path) -> dict[str, dict[str, object]]:
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        return json.loads(fh.read(length))


def test_every_tensor_in_storage_order_with_its_shape_and_dtype(tmp_path: Path):
    tensors = {
        "z.weight": torch.zeros(3, 2),
        "a.index": torch.zeros(4, dtype=torch.int64),
        "m.half": torch.zeros(5, dtype=torch.float16),
        "u16": torch.zeros(2, dtype=torch.uint16),
        "u32": torch.zeros(3, dtype=torch.uint32),
        "u64": torch.zeros(1, dtype=torch.uint64),
        "c": torch.zeros(2, dtype=torch.complex64),
        "f8": torch.zeros(6, dtype=torch.float8_e4m3fn),
        "flag": torch.zeros(1, dtype=torch.bool),
        "empty": torch.zeros(0, 3),
    }
    path = tmp_path / "mixed.safetensors"
    save_file(tensors, str(path))
    read = read_safetensors_header(path)
    header = raw_header(path)
    by_offset = [name for _, name in sorted((v["data_offsets"], k) for k, v in header.items() if k != "__metadata__")]
    assert list(read) == by_offset
    assert {n: (m.shape, m.dtype, m.storage) for n, m in read.items()} == {
        n: (tuple(t.shape), t.dtype, None) for n, t in tensors.items()
    }


def rewrite(path: Path, header: dict[str, dict[str, object]], data: bytes) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def real_file(tmp_path: Path) -> tuple[Path, dict[str, dict[str, object]], bytes]:
    path = tmp_path / "w.safetensors"
    save_file({"a": torch.zeros(2), "b": torch.zeros(3)}, str(path))
    header = raw_header(path)
    data = path.read_bytes()[8 + struct.unpack("<Q", path.read_bytes()[:8])[0] :]
    return path, header, data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h: h["a"].update(data_offsets=[0, 4]), "needs 8 bytes, its offsets hold 4"),
        (lambda h: h["b"].update(data_offsets=[12, 24]), "starts at byte 12 of the data, expected 8"),
        (lambda h: h["a"].update(dtype="F4"), "dtype 'F4', which this reader does not know"),
        (lambda h: h["a"].update(shape=[-2]), "not a list of sizes"),
        (lambda h: h.update(__metadata__=[1]), "__metadata__ is not a JSON object"),
        (lambda h: h.pop("b"), "the tensors cover 8 bytes, the data is 20"),
    ],
)
def test_a_header_the_safetensors_package_would_refuse_is_refused_in_one_line(tmp_path: Path, change, message):
    path, header, data = real_file(tmp_path)
    change(header)
    rewrite(path, header, data)
    with pytest.raises(CheckpointError) as info:
        read_safetensors_header(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_file_named_in_bytes_that_are_not_utf8_is_read(tmp_path: Path):
    written = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(4)}, str(written))
    path = tmp_path / os.fsdecode(b"poids-\xe9t\xe9.safetensors")
    try:
        os.rename(written, path)
    except (UnicodeEncodeError, OSError):
        pytest.skip("this file system cannot name a file with non-UTF-8 bytes")
    assert read_safetensors_header(path)["w"].shape == (4,)
