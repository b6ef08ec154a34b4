"""Keras files -> their recurrent layers, counted both ways and cross-checked against the stored weight shapes.

- ``.keras`` (Keras 3): a zip holding ``config.json`` and ``model.weights.h5``. The config is read
  with ``zipfile`` and ``json`` alone; the weight shapes need ``h5py`` (the ``keras`` extra). Without
  it the report says the shape check was skipped and why.
- legacy ``.h5`` (``model.save("model.h5")``): HDF5 throughout, the config in its ``model_config``
  attribute, so ``h5py`` is required.

No Keras import, and no weight values are read: shapes come from the HDF5 dataset headers.
:func:`read_layer_weights` reads the values of chosen layers, for :mod:`~torchlstm_params.keras_convert`.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from .errors import ForeignFileError
from .keras_config import KerasLayer, find_stacks, model_layers, stack_expression, torch_count

__all__ = [
    "H5PY_MISSING",
    "KerasFile",
    "KerasLayerReport",
    "KerasStack",
    "WeightShape",
    "read_keras_file",
    "read_layer_weights",
]

H5PY_MISSING: Final = "h5py is not installed (pip install 'torchlstm_params[keras]')"
_ZIP_MAGIC: Final = b"PK\x03\x04"
_HDF5_MAGIC: Final = b"\x89HDF\r\n\x1a\n"
_WEIGHTS_MEMBER: Final = "model.weights.h5"


@dataclass(frozen=True, slots=True)
class WeightShape:
    """One Keras weight: the shape its layer's config implies and the shape stored in the file.

    Attributes:
        direction: ``forward`` or ``backward``.
        role: ``kernel``, ``recurrent_kernel`` or ``bias``.
        expected: the shape the layer's config implies.
        found: the stored shape (None: not in the file).
        location: the HDF5 path of the dataset (``""`` when not found).
    """

    direction: str  # "forward" or "backward"
    role: str  # "kernel", "recurrent_kernel" or "bias"
    expected: tuple[int, ...]
    found: tuple[int, ...] | None  # None: not in the file
    location: str  # HDF5 path of the dataset ("" when not found)

    @property
    def matches(self) -> bool:
        return self.found == self.expected

    def to_dict(self) -> dict[str, object]:
        return {
            "direction": self.direction,
            "role": self.role,
            "expected": list(self.expected),
            "found": None if self.found is None else list(self.found),
            "location": self.location,
            "matches": self.matches,
        }


@dataclass(frozen=True, slots=True)
class KerasLayerReport:
    """A Keras recurrent layer: Keras count, PyTorch equivalent and count, and the shape cross-check.

    Attributes:
        layer: the layer as its config describes it.
        weights: its stored weights and their expected shapes (empty when the shapes were not read).
        extra: locations of stored weights the config does not explain.
        skipped: why the shapes were not read (``""`` when they were).
    """

    layer: KerasLayer
    weights: tuple[WeightShape, ...]  # empty when the shapes were not read
    extra: tuple[str, ...]  # locations of stored weights the config does not explain
    skipped: str  # why the shapes were not read; "" when they were

    @property
    def check(self) -> str:
        """``ok``, ``mismatch`` or ``skipped (<why>)``."""
        if self.skipped:
            return f"skipped ({self.skipped})"
        return "ok" if all(w.matches for w in self.weights) and not self.extra else "mismatch"

    @property
    def stored_params(self) -> int | None:
        """Elements of the weights stored for this layer; None when the shapes were not read."""
        if self.skipped:
            return None
        return sum(_numel(w.found) for w in self.weights if w.found is not None)

    @property
    def problems(self) -> tuple[str, ...]:
        label = f"layer {self.layer.path!r} ({self.layer.label})"
        found = [
            f"{label} {w.direction} {w.role}: expected {_shape(w.expected)} from the config, "
            + ("found no such weight in the file" if w.found is None else f"found {_shape(w.found)} at {w.location}")
            for w in self.weights
            if not w.matches
        ]
        found.extend(f"{label}: the file holds a weight the config does not explain, at {loc}" for loc in self.extra)
        return tuple(found)

    def to_dict(self) -> dict[str, object]:
        layer = self.layer
        return {
            "layer": layer.path,
            "class": layer.label,
            "input_size": layer.input_size,
            "units": layer.forward.units,
            "use_bias": layer.forward.use_bias,
            "bidirectional": layer.bidirectional,
            "merge_mode": layer.merge_mode if layer.bidirectional else None,
            "reset_after": layer.forward.reset_after if layer.forward.class_name == "GRU" else None,
            "go_backwards": layer.forward.go_backwards,
            "return_sequences": layer.return_sequences,
            "keras_params": layer.keras_params,
            "keras_derivation": layer.keras_derivation,
            "torch_expression": layer.torch_expression,
            "torch_params": layer.torch_params,
            "torch_note": layer.torch_note,
            "stored_params": self.stored_params,
            "shape_check": self.check,
            "weights": [w.to_dict() for w in self.weights],
            "extra_weights": list(self.extra),
        }


@dataclass(frozen=True, slots=True)
class KerasStack:
    """Consecutive Keras layers that one PyTorch module with ``num_layers`` holds.

    Attributes:
        layers: the stacked layers' paths.
        keras_params: their Keras count.
        torch_expression: the one PyTorch module that holds them.
        torch_params: its count.
    """

    layers: tuple[str, ...]
    keras_params: int
    torch_expression: str
    torch_params: int

    def to_dict(self) -> dict[str, object]:
        return {
            "layers": list(self.layers),
            "keras_params": self.keras_params,
            "torch_expression": self.torch_expression,
            "torch_params": self.torch_params,
        }


@dataclass(frozen=True, slots=True)
class KerasFile:
    """What a Keras file says about its recurrent layers, counted the Keras way and the PyTorch way.

    Attributes:
        path: the file read.
        format: ``keras`` (Keras 3 zip) or ``h5`` (legacy HDF5).
        keras_version: the Keras version that wrote it (``""`` when the file does not say).
        model_class: the model's class (``Functional``, ``Sequential``...).
        model_name: the model's name.
        layers: one report per recurrent layer.
        stacks: consecutive layers that one PyTorch module with ``num_layers`` holds.
        file_params: every model weight stored (optimizer state excluded); None when the shapes were not read.
        notes: what the reader could not tell or had to assume.
        skipped: why the weight shapes were not read (``""`` when they were).
    """

    path: str
    format: str  # "keras" (Keras 3 zip) or "h5" (legacy HDF5)
    keras_version: str  # "" when the file does not say
    model_class: str
    model_name: str
    layers: tuple[KerasLayerReport, ...]
    stacks: tuple[KerasStack, ...]
    file_params: int | None  # every model weight stored (optimizer state excluded); None: shapes not read
    notes: tuple[str, ...]
    skipped: str = ""  # why the weight shapes were not read; "" when they were

    @property
    def weights_read(self) -> bool:
        return not self.skipped

    @property
    def shape_check(self) -> str:
        """``passed``, ``failed`` or ``skipped (<why>)``: the cross-check of stored shapes against the config."""
        if self.skipped:
            return f"skipped ({self.skipped})"
        return "failed" if self.problems else "passed"

    @property
    def keras_params(self) -> int:
        """The recurrent layers' Keras count."""
        return sum(r.layer.keras_params for r in self.layers)

    @property
    def torch_params(self) -> int | None:
        """The recurrent layers' PyTorch count; None when a layer has no PyTorch equivalent."""
        counts = [r.layer.torch_params for r in self.layers]
        return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)

    @property
    def other_params(self) -> int | None:
        """Stored weights outside the recurrent layers (Dense, Embedding, BatchNormalization, ...)."""
        if self.file_params is None:
            return None
        return self.file_params - sum(r.stored_params or 0 for r in self.layers)

    @property
    def problems(self) -> tuple[str, ...]:
        """Every stored shape that does not fit its layer's config (what ``--check`` fails on)."""
        return tuple(p for r in self.layers for p in r.problems)

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.path,
            "format": self.format,
            "keras_version": self.keras_version,
            "model_class": self.model_class,
            "model_name": self.model_name,
            "layers": [r.to_dict() for r in self.layers],
            "stacks": [s.to_dict() for s in self.stacks],
            "recurrent_keras_params": self.keras_params,
            "recurrent_torch_params": self.torch_params,
            "other_params": self.other_params,
            "file_params": self.file_params,
            "weights_read": self.weights_read,
            "shape_check": self.shape_check,
            "notes": list(self.notes),
            "problems": list(self.problems),
        }


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _h5py() -> Any:
    try:
        import h5py  # type: ignore[import-untyped]  # the `keras` extra; h5py ships no type hints
    except ImportError:
        return None
    return h5py


def _magic(path: Path) -> bytes:
    if not path.exists():
        raise ForeignFileError(f"no such file: {path}")
    if path.is_dir():
        raise ForeignFileError(f"{path} is a directory, not a Keras file")
    try:
        with path.open("rb") as handle:
            return handle.read(8)
    except OSError as exc:
        raise ForeignFileError(f"{path} cannot be read: {exc.strerror or exc}") from None


def _json(text: bytes | str, what: str) -> Mapping[str, Any]:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ForeignFileError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ForeignFileError(f"{what} is not a JSON object, got {type(data).__name__}")
    return data


def _attr_text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


@contextmanager
def _hdf5(path: Path) -> Iterator[tuple[str, Mapping[str, Any], str, Any]]:
    """``(format, config, keras_version, weights root or None)`` for either kind of file, kept open."""
    magic = _magic(path)
    h5py = _h5py()
    if magic.startswith(_ZIP_MAGIC):
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise ForeignFileError(f"{path} is not a readable .keras zip: {exc}") from None
        with archive:
            names = archive.namelist()
            if "config.json" not in names:
                raise ForeignFileError(f"{path} is a zip without config.json: not a Keras 3 .keras file")
            config = _json(archive.read("config.json"), f"{path}: config.json")
            version = ""
            if "metadata.json" in names:
                version = str(_json(archive.read("metadata.json"), f"{path}: metadata.json").get("keras_version", ""))
            if h5py is None or _WEIGHTS_MEMBER not in names:
                yield "keras", config, version, None
                return
            # The member is stored uncompressed by Keras, so the h5 file is read in place, not extracted.
            with archive.open(_WEIGHTS_MEMBER) as member, _open_h5(h5py, member, f"{path}: {_WEIGHTS_MEMBER}") as h5:
                yield "keras", config, version, h5
        return
    if not magic.startswith(_HDF5_MAGIC):
        raise ForeignFileError(f"{path} is neither a Keras 3 .keras zip nor an HDF5 (.h5) file")
    if h5py is None:
        raise ForeignFileError(f"reading the legacy HDF5 Keras file {path} needs h5py: {H5PY_MISSING}")
    with _open_h5(h5py, str(path), str(path)) as h5:
        if "model_config" not in h5.attrs:
            raise ForeignFileError(
                f"{path} has no model_config attribute: a weights-only HDF5 file (save_weights) does not hold "
                "the layer settings"
            )
        config = _json(_attr_text(h5.attrs["model_config"]), f"{path}: model_config")
        version = _attr_text(h5.attrs.get("keras_version", ""))
        if "model_weights" not in h5:
            raise ForeignFileError(f"{path} has a model_config but no model_weights group")
        yield "h5", config, version, h5["model_weights"]


@contextmanager
def _open_h5(h5py: Any, source: Any, what: str) -> Iterator[Any]:
    try:
        h5 = h5py.File(source, "r")
    except OSError as exc:
        raise ForeignFileError(f"{what} is not a readable HDF5 file: {exc}") from None
    try:
        yield h5
    finally:
        h5.close()


def _keras_groups(group: Any, prefix: str, out: dict[str, Any]) -> None:
    """Layer path -> HDF5 group, for a ``.keras`` weights file (layers are named by their ``vars`` attribute)."""
    if "layers" not in group:
        return
    for child in group["layers"].values():
        if "vars" not in child:
            continue
        name = prefix + _attr_text(child["vars"].attrs.get("name", ""))
        out[name] = child
        _keras_groups(child, name + "/", out)


def _datasets(group: Any) -> list[Any]:
    """A ``vars`` group's datasets in Keras's order (their names are 0, 1, 2, ...)."""
    return [group[k] for k in sorted(group.keys(), key=lambda k: (len(k), k))]


def _keras_layer_datasets(groups: Mapping[str, Any], layer: KerasLayer) -> tuple[dict[tuple[str, str], Any], list[Any]]:
    """``{(direction, role): dataset}`` and the datasets left over, for a ``.keras`` weights file."""
    group = groups.get(layer.path)
    if group is None:
        return {}, []
    if layer.bidirectional:
        parts = {"forward": group.get("forward_layer"), "backward": group.get("backward_layer")}
    else:
        parts = {"forward": group}
    found: dict[tuple[str, str], Any] = {}
    extra: list[Any] = []
    for index, (direction, sub) in enumerate(parts.items()):
        if sub is None or "cell" not in sub or "vars" not in sub["cell"]:
            continue
        stored = _datasets(sub["cell"]["vars"])
        roles = [role for role, _ in layer.directions[index].weight_shapes(1)]
        found.update(((direction, role), ds) for role, ds in zip(roles, stored, strict=False))
        extra.extend(stored[len(roles) :])
    return found, extra


def _legacy_layer_datasets(root: Any, layer: KerasLayer) -> tuple[dict[tuple[str, str], Any], list[Any]]:
    """``{(direction, role): dataset}`` and the datasets left over, for a legacy ``.h5`` file."""
    top, *rest = layer.path.split("/")
    if top not in root:
        return {}, []
    group = root[top]
    names = [_attr_text(n) for n in group.attrs.get("weight_names", [])]
    if rest:  # a layer of a nested model: its weights are the ones whose path names it
        names = [n for n in names if layer.path.split("/")[-1] in n.split("/")[:-1]]
    directions = [("forward", layer.forward)] + ([("backward", layer.backward)] if layer.backward is not None else [])
    found: dict[tuple[str, str], Any] = {}
    used: set[str] = set()
    for index, (direction, rnn) in enumerate(directions):
        if len(directions) == 2:
            mine = [n for n in names if rnn.name in n.split("/")[:-1]]
            if not mine:  # fall back on Keras's order: the forward layer's weights first
                half = len(names) // 2
                mine = names[:half] if index == 0 else names[half:]
        else:
            mine = names
        for name in mine:
            role = name.split("/")[-1].split(":")[0]
            if (direction, role) not in found and name in group:
                found[(direction, role)] = group[name]
                used.add(name)
    extra = [group[n] for n in names if n not in used and n in group]
    return found, extra


def _count_datasets(group: Any) -> int:
    total = 0

    def visit(_: str, obj: Any) -> None:
        nonlocal total
        if hasattr(obj, "shape") and obj.shape is not None:
            total += _numel(tuple(int(d) for d in obj.shape))

    group.visititems(visit)
    return total


def _file_params(fmt: str, root: Any) -> int:
    """Every model weight stored: ``layers`` and the model's own ``vars`` (.keras), or ``model_weights`` (.h5)."""
    if fmt == "h5":
        return _count_datasets(root)
    return sum(_count_datasets(root[key]) for key in ("layers", "vars") if key in root)


def _layer_report(
    fmt: str, root: Any, groups: Mapping[str, Any], layer: KerasLayer
) -> tuple[KerasLayerReport, str | None]:
    found, extra = _keras_layer_datasets(groups, layer) if fmt == "keras" else _legacy_layer_datasets(root, layer)
    note = None
    if layer.input_size is None and ("forward", "kernel") in found:
        kernel = found[("forward", "kernel")]
        if len(kernel.shape) == 2:
            layer = replace(layer, input_size=int(kernel.shape[0]))
            note = f"layer {layer.path!r}: input size {layer.input_size} read from its kernel's shape, not the config"
    weights = []
    for direction, role, shape in layer.expected_weights():
        ds = found.get((direction, role))
        weights.append(
            WeightShape(
                direction,
                role,
                shape,
                None if ds is None else tuple(int(d) for d in ds.shape),
                "" if ds is None else str(ds.name),
            )
        )
    return KerasLayerReport(layer, tuple(weights), tuple(str(ds.name) for ds in extra), ""), note


def _stacks(layers: Sequence[KerasLayer]) -> tuple[KerasStack, ...]:
    stacks = []
    for stack in find_stacks(layers):
        expression = stack_expression(stack)
        spec = stack[0].spec
        assert spec is not None  # a stack's layers are symmetric by construction
        torch = torch_count(replace(spec, num_layers=len(stack)))
        stacks.append(KerasStack(tuple(s.path for s in stack), sum(s.keras_params for s in stack), expression, torch))
    return tuple(stacks)


def read_keras_file(path: str | os.PathLike[str], *, read_weights: bool = True) -> KerasFile:
    """Read a ``.keras`` or legacy ``.h5`` Keras file's recurrent layers (no Keras import, no weight values).

    ``read_weights=False`` (or h5py missing, for a ``.keras`` file) skips the shape cross-check, and
    the report says so. Raises :class:`~torchlstm_params.errors.ForeignFileError` for a file that
    cannot be read.
    """
    source = Path(path)
    with _hdf5(source) as (fmt, config, version, root):
        layers, config_notes = model_layers(config)
        notes = list(config_notes)
        model_config = config.get("config")
        name = model_config.get("name", "") if isinstance(model_config, Mapping) else ""
        if root is None or not read_weights:
            why = "not asked to read weights" if not read_weights else H5PY_MISSING
            if fmt == "keras" and root is None and _h5py() is not None:
                why = f"the file has no {_WEIGHTS_MEMBER}"
            notes.append(f"weight shapes not read: {why}; the counts come from the config alone")
            reports = tuple(KerasLayerReport(layer, (), (), why) for layer in layers)
            file_params = None
            skipped = why
        else:
            groups: dict[str, Any] = {}
            if fmt == "keras":
                _keras_groups(root, "", groups)
            built = []
            for layer in layers:
                report, note = _layer_report(fmt, root, groups, layer)
                built.append(report)
                if note is not None:
                    notes.append(note)
            reports = tuple(built)
            file_params = _file_params(fmt, root)
            skipped = ""
        resolved = tuple(r.layer for r in reports)
        return KerasFile(
            str(source),
            fmt,
            version,
            str(config.get("class_name", "")),
            str(name),
            reports,
            _stacks(resolved),
            file_params,
            tuple(notes),
            skipped,
        )


def read_layer_weights(
    path: str | os.PathLike[str], layers: Sequence[KerasLayer]
) -> dict[str, dict[tuple[str, str], Any]]:
    """The stored values (numpy arrays) of these layers' weights: ``{path: {(direction, role): array}}``.

    Needs h5py. Raises :class:`ForeignFileError` when a weight is missing or its shape does not fit.
    """
    if _h5py() is None:
        raise ForeignFileError(f"reading Keras weight values needs h5py: {H5PY_MISSING}")
    source = Path(path)
    out: dict[str, dict[tuple[str, str], Any]] = {}
    with _hdf5(source) as (fmt, _, _, root):
        if root is None:
            raise ForeignFileError(f"{source} has no {_WEIGHTS_MEMBER}: there are no weights to convert")
        groups: dict[str, Any] = {}
        if fmt == "keras":
            _keras_groups(root, "", groups)
        for layer in layers:
            report, _ = _layer_report(fmt, root, groups, layer)
            if report.problems:
                raise ForeignFileError(report.problems[0])
            found, _ = _keras_layer_datasets(groups, layer) if fmt == "keras" else _legacy_layer_datasets(root, layer)
            out[layer.path] = {key: ds[()] for key, ds in found.items()}
    return out
