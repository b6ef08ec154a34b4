"""Read torch checkpoint files without running them: an unpickler that imports and calls nothing.

``read_pickled(path)`` reads what ``torch.save`` (zip or legacy format), ``torch.jit.save`` and plain
``pickle.dump`` write, and returns the pickled object graph with three kinds of leaves besides plain
Python values:

- :class:`PickledTensor`: what torch's tensor rebuild functions would have been given (shape, dtype,
  stride, storage offset, storage key and size, ``requires_grad``, parameter or not). Tensor data is
  never read: the storage is only named (its archive record's size is taken from the zip directory).
- :class:`PickledObject`: an inert stand-in for every other class or function the file names. It
  records the name, the arguments it was called (REDUCE) or created (NEWOBJ/NEWOBJ_EX) with, the
  state it was given (BUILD) and the items appended or set on it. Nothing of the named module is
  imported and none of its code runs; a stand-in called with arguments gives another stand-in.
- the few real objects on a short allow-list: ``collections.OrderedDict``, ``set``, ``frozenset``,
  ``slice``, ``complex``, torch's dtype/layout/qscheme/memory-format constants, and this module's own
  replacements for the byte-string helpers that protocol 2 uses (``_codecs.encode``, ``bytes``,
  ``bytearray``) and TorchScript's list tags (``torch.jit._pickle``).

Why not torch's own rebuild functions on meta storages: a real tensor, even on the meta device, lets
the pickle's later opcodes reach torch code (BUILD calls ``Tensor.__setstate__``, which calls
``set_``; ``_rebuild_parameter_with_state`` sets arbitrary attributes). The records here mirror those
functions' signatures and checks (a view must fit inside its storage) and nothing else can be reached.

Pickle extension codes (EXT1/2/4) are refused: they resolve through process-wide tables (copyreg)
that bypass ``find_class``.
"""

from __future__ import annotations

import _compat_pickle
import ast
import copyreg
import io
import math
import pickle
import pickletools
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, ClassVar

import torch

from .errors import CheckpointError

__all__ = [
    "CheckpointError",
    "PickledFile",
    "PickledObject",
    "PickledTensor",
    "ScriptClass",
    "StorageRef",
    "read_pickled",
]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
_LEGACY_PROTOCOL = 1001
_MAX_RECORD_BYTES = 1 << 31  # data.pkl / code records read into memory: refuse larger (a zip bomb)
_MAX_CODE_BYTES = 64 << 20

# The legacy <type>Storage names torch pickles (torch.storage._dtype_to_storage_type_map; frozen upstream).
_STORAGE_DTYPES: Mapping[str, torch.dtype] = MappingProxyType(
    {
        "DoubleStorage": torch.float64,
        "FloatStorage": torch.float32,
        "HalfStorage": torch.float16,
        "LongStorage": torch.int64,
        "IntStorage": torch.int32,
        "ShortStorage": torch.int16,
        "CharStorage": torch.int8,
        "ByteStorage": torch.uint8,
        "BoolStorage": torch.bool,
        "BFloat16Storage": torch.bfloat16,
        "ComplexDoubleStorage": torch.complex128,
        "ComplexFloatStorage": torch.complex64,
        "QInt8Storage": torch.qint8,
        "QInt32Storage": torch.qint32,
        "QUInt8Storage": torch.quint8,
        "QUInt4x2Storage": torch.quint4x2,
        "QUInt2x4Storage": torch.quint2x4,
        "UntypedStorage": torch.uint8,
    }
)
_TORCH_CONSTANTS = (torch.dtype, torch.layout, torch.memory_format, torch.qscheme)
_PLAIN_TENSOR_CLASSES = frozenset({"torch.Tensor", "torch._tensor.Tensor"})
_PARAMETER_CLASSES = frozenset({"torch.nn.parameter.Parameter", "torch.nn.Parameter"})
_INT_ONLY = frozenset({int})
_TEXT_ENCODINGS = frozenset({"latin1", "latin-1", "utf-8", "utf8", "ascii"})


class _Refused(pickle.UnpicklingError):
    """Raised inside the unpickler with the one-line reason the file is refused."""


@dataclass(frozen=True, slots=True)
class StorageRef:
    """One storage of the file, named, never read.

    ``key`` is the file's own storage identity ("0", "1", ... in a zip archive): tensors with the same
    key share memory in torch. ``numel`` is in elements of ``dtype`` as the file declares it;
    ``nbytes`` is what the file holds for it (the zip record's size; for legacy files, checked against
    the size header written before the data).
    """

    key: str
    dtype: torch.dtype
    numel: int
    location: str
    nbytes: int

    def __setstate__(self, state: object) -> None:
        raise _Refused("the file sets the state of a storage")


@dataclass(frozen=True, slots=True, eq=False)
class PickledTensor:
    """A tensor as the file describes it: everything but its values.

    ``storage`` is None for tensors saved without one (meta tensors: ``torch.save`` drops their
    storage sharing; wrapper subclasses). ``parameter`` is True when the file rebuilds an
    ``nn.Parameter``; ``subclass`` names any other tensor class ("" for a plain tensor).
    Equality is identity: two tensors are tied when their :attr:`tie_key` is equal, never because
    their shapes are.
    """

    shape: tuple[int, ...]
    dtype: torch.dtype
    stride: tuple[int, ...]
    storage_offset: int
    storage: StorageRef | None
    requires_grad: bool = False
    parameter: bool = False
    subclass: str = ""
    device: str = "cpu"
    quantizer: tuple[object, ...] | None = None  # (qscheme, scale(s), zero point(s)[, axis]) of a quantized tensor
    state: object = None  # Python attributes pickled with a Parameter or tensor subclass

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize

    @property
    def tie_key(self) -> tuple[object, ...] | None:
        """Equal for two tensors exactly when they are the same view of the same stored memory.

        Built from the file's storage key (a real storage identity), never from an address; None
        when the tensor has no storage in the file (it can then be tied to nothing).
        """
        if self.storage is None:
            return None
        return (self.storage.key, self.storage_offset, self.shape, self.stride, self.dtype)

    def __setstate__(self, state: object) -> None:
        raise _Refused("the file sets attributes on a tensor after building it")


class PickledObject:
    """An inert stand-in for an object of a class (or a call of a function) that the reader does not run.

    ``qualified_name`` is the name the file gives (e.g. ``torch.nn.modules.rnn.LSTM``). ``built`` says
    how the file made it: "call" (REDUCE: ``args``/``kwargs`` are the call's), "new" (NEWOBJ,
    NEWOBJ_EX or ``copyreg._reconstructor``: ``cls.__new__(cls, *args)``). ``state`` is what BUILD
    passed (an nn.Module's ``__dict__``), ``listitems`` what APPEND/ADDITEMS added, ``dictitems`` the
    (key, value) pairs SETITEM set. Each class the file names is a fresh subclass of this one, made
    for that read only.
    """

    __slots__ = ("args", "built", "dictitems", "kwargs", "listitems", "state")
    module: ClassVar[str] = ""
    name: ClassVar[str] = ""
    qualified_name: ClassVar[str] = ""

    args: tuple[object, ...]
    kwargs: dict[str, object]
    built: str
    state: object
    listitems: list[object]
    dictitems: list[tuple[object, object]]

    def __new__(cls, *args: object, **kwargs: object) -> PickledObject:
        self = object.__new__(cls)
        self.args = args
        self.kwargs = dict(kwargs)
        self.built = "new"
        self.state = None
        self.listitems = []
        self.dictitems = []
        return self

    def __init__(self, *args: object, **kwargs: object) -> None:  # only a call (REDUCE) runs __init__
        self.built = "call"

    def __setstate__(self, state: object) -> None:
        self.state = state

    def __setitem__(self, key: object, value: object) -> None:
        self.dictitems.append((key, value))

    def append(self, item: object) -> None:
        self.listitems.append(item)

    def extend(self, items: list[object]) -> None:
        self.listitems.extend(items)

    def add(self, item: object) -> None:
        self.listitems.append(item)

    def __call__(self, *args: object, **kwargs: object) -> PickledObject:
        """A pickle that calls what a stand-in stands for (``getattr(os, "system")("...")``) gets a record."""
        return _CallResult(self, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<pickled {self.qualified_name} (not run)>"


class _CallResult(PickledObject):
    """What calling a stand-in gives: ``args[0]`` is the stand-in that was called."""

    __slots__ = ()
    qualified_name: ClassVar[str] = "(call)"

    def __repr__(self) -> str:
        callee = self.args[0]
        return f"<pickled call of {getattr(callee, 'qualified_name', '?')} (not run)>"


def _stand_in_class(module: str, name: str) -> type[PickledObject]:
    qualified = f"{module}.{name}" if module else name
    namespace = {"__slots__": (), "module": module, "name": name, "qualified_name": qualified}
    return type("PickledObject", (PickledObject,), namespace)


class _Allowed:
    """An allow-listed callable: this module's own replacement, under the name the file uses."""

    __slots__ = ("_func", "qualified_name")

    def __init__(self, qualified_name: str, func: Callable[..., object]) -> None:
        self.qualified_name = qualified_name
        self._func = func

    def __call__(self, *args: Any, **kwargs: Any) -> object:
        return self._func(*args, **kwargs)

    def __setstate__(self, state: object) -> None:
        raise _Refused(f"the file sets attributes of {self.qualified_name}")

    def __repr__(self) -> str:
        return f"<allowed {self.qualified_name}>"


class _StorageType:
    """What ``torch.FloatStorage`` and friends stand for in a persistent id: a dtype."""

    __slots__ = ("dtype", "qualified_name")

    def __init__(self, qualified_name: str, dtype: torch.dtype) -> None:
        self.qualified_name = qualified_name
        self.dtype = dtype

    def __setstate__(self, state: object) -> None:
        raise _Refused(f"the file sets attributes of {self.qualified_name}")


@dataclass(frozen=True, slots=True)
class ScriptClass:
    """What a TorchScript archive's code declares about one class (read with ``ast``, never run)."""

    qualified_name: str  # as data.pkl names it, e.g. "__torch__.torch.nn.modules.rnn.___torch_mangle_0.LSTM"
    is_module: bool
    parameters: tuple[str, ...]
    buffers: tuple[str, ...]
    constants: Mapping[str, object]  # Final class constants: hidden_size, num_layers, ...


@dataclass(frozen=True, slots=True, eq=False)
class PickledFile:
    """A file read without running it.

    ``format``: "torch.save" (zip), "torch.save-legacy" (the pre-1.6 stream), "torch.jit.save"
    (TorchScript zip, read from its data.pkl) or "pickle" (a plain pickle). ``root`` is the object
    graph. ``stand_ins`` names every class or function the file refers to that was recorded instead
    of run, in the order the file names them.
    """

    path: str
    format: str
    root: object
    stand_ins: tuple[str, ...]
    storages: Mapping[str, StorageRef]
    script_classes: Mapping[str, ScriptClass]
    notes: tuple[str, ...] = ()


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Refused(f"tensor record with {what} {value!r}, expected a non-negative integer")
    return value


def _ints(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)):
        raise _Refused(f"tensor record with {what} {value!r:.80}, expected a tuple of integers")
    if not value or ({*map(type, value)} <= _INT_ONLY and min(value) >= 0):  # the common case, in C loops
        return tuple(value)
    return tuple(_int(v, what) for v in value)


def _device_text(device: object) -> str:
    if isinstance(device, str):
        return device
    if isinstance(device, PickledObject) and device.qualified_name == "torch.device":
        return ":".join(str(a) for a in device.args)
    return str(device)


def _class_name(cls: object) -> str:
    if isinstance(cls, type):
        if issubclass(cls, PickledObject):
            return cls.qualified_name
        return f"{cls.__module__}.{cls.__qualname__}"
    return repr(cls)


class _Reader:
    """One read: the allow-list's callables, the stand-in classes made so far, the storages named."""

    def __init__(self, records: Callable[[str], int | None] | None) -> None:
        self.records = records  # zip: storage key -> its record's size (None: no record); None: not a zip
        self.legacy = False
        self.storages: dict[str, StorageRef] = {}
        self.classes: dict[tuple[str, str], type[PickledObject]] = {}
        self.stand_ins: dict[str, None] = {}
        self.key_prefix = ""
        self.nested = 0
        self.blobs = 0  # storages pickled by plain pickle, each its own torch.save stream: key namespaces
        utils = "torch._utils"
        table: dict[tuple[str, str], Callable[..., object]] = {
            (utils, "_rebuild_tensor"): self._rebuild_tensor,
            (utils, "_rebuild_tensor_v2"): self._rebuild_tensor_v2,
            (utils, "_rebuild_tensor_v3"): self._rebuild_tensor_v3,
            (utils, "_rebuild_parameter"): self._rebuild_parameter,
            (utils, "_rebuild_parameter_with_state"): self._rebuild_parameter_with_state,
            (utils, "_rebuild_qtensor"): self._rebuild_qtensor,
            (utils, "_rebuild_meta_tensor_no_storage"): self._rebuild_meta_tensor_no_storage,
            (utils, "_rebuild_wrapper_subclass"): self._rebuild_wrapper_subclass,
            (utils, "_rebuild_device_tensor_from_cpu_tensor"): self._rebuild_device_tensor_from_cpu_tensor,
            ("torch._tensor", "_rebuild_from_type_v2"): self._rebuild_from_type_v2,
            ("torch._tensor", "_rebuild_from_type"): self._rebuild_from_type,
            ("torch", "Size"): _size,
            ("torch.storage", "_load_from_bytes"): self._load_from_bytes,
            ("torch.jit._pickle", "restore_type_tag"): _restore_type_tag,
            ("torch.jit._pickle", "build_intlist"): _build_list,
            ("torch.jit._pickle", "build_doublelist"): _build_list,
            ("torch.jit._pickle", "build_boollist"): _build_list,
            ("torch.jit._pickle", "build_tensorlist"): _build_list,
            ("copyreg", "_reconstructor"): self._reconstructor,
            ("_codecs", "encode"): _encode,
            ("builtins", "bytes"): _bytes,
            ("builtins", "bytearray"): _bytearray,
        }
        self.allowed: dict[tuple[str, str], object] = {
            key: _Allowed(f"{key[0]}.{key[1]}", func) for key, func in table.items()
        }
        self.allowed.update(
            {
                ("collections", "OrderedDict"): OrderedDict,
                ("builtins", "set"): set,
                ("builtins", "frozenset"): frozenset,
                ("builtins", "slice"): slice,
                ("builtins", "complex"): complex,
            }
        )

    # -- names -------------------------------------------------------------------------------------
    def resolve(self, module: object, name: object, py2: bool) -> object:
        if not isinstance(module, str) or not isinstance(name, str):
            raise _Refused(f"a global named by non-strings {module!r} {name!r}")
        if py2:  # what the C unpickler's fix_imports does for protocol < 3 (find_class is ours now)
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        if module == "torch.tensor":  # torch.load's own load_module_mapping
            module = "torch._tensor"
        found = self.allowed.get((module, name))
        if found is not None:
            return found
        if module in ("torch", "torch.cuda", "torch.storage") and name in _STORAGE_DTYPES:
            return _StorageType(f"{module}.{name}", _STORAGE_DTYPES[name])
        if module == "torch":
            value = vars(torch).get(name)  # no module __getattr__: nothing is imported
            if isinstance(value, _TORCH_CONSTANTS):
                return value
        cls = self.classes.get((module, name))
        if cls is None:
            cls = self.classes[(module, name)] = _stand_in_class(module, name)
            self.stand_ins[cls.qualified_name] = None
        return cls

    # -- storages ----------------------------------------------------------------------------------
    def persistent(self, pid: object) -> object:
        if not isinstance(pid, tuple) or not pid:
            raise _Refused(f"unknown persistent id {pid!r:.80}")
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind == "storage" and len(pid) == 5 and self.records is not None:
            return self.storage(pid[1], pid[2], pid[3], pid[4])
        if kind == "storage" and len(pid) == 6 and self.legacy:
            if pid[5] is not None:
                raise _Refused("storage views of the pre-1.0 format are not read")
            return self.storage(pid[1], pid[2], pid[3], pid[4])
        if kind == "module" and len(pid) == 4 and self.legacy:
            return pid[1]  # the legacy format names each nn.Module class with its source: keep the class
        raise _Refused(f"unknown persistent id {pid!r:.80}")

    def storage(self, storage_type: object, key: object, location: object, numel: object) -> StorageRef:
        if not isinstance(storage_type, _StorageType):
            raise _Refused(f"a storage of type {storage_type!r:.80}, expected torch's <type>Storage")
        if type(key) is not str or type(location) is not str:  # Python 2 files may give bytes
            key = key.decode("ascii") if isinstance(key, bytes) else key
            location = location.decode("ascii") if isinstance(location, bytes) else location
            if not isinstance(key, str) or not isinstance(location, str):
                raise _Refused(f"a storage with key {key!r:.80} and location {location!r:.80}")
        count = _int(numel, "storage size")
        key = self.key_prefix + key
        found = self.storages.get(key)
        if found is not None:
            if found.dtype != storage_type.dtype:
                raise _Refused(f"storage {key!r} is named as {found.dtype} and as {storage_type.dtype}")
            return found
        declared = count * storage_type.dtype.itemsize
        nbytes = declared
        if self.records is not None:
            held = self.records(key)
            if held is None:
                raise _Refused(f"storage {key!r} has no data/{key} record in the archive")
            if held < declared:
                raise _Refused(f"storage {key!r} holds {held:,} bytes, the file declares {declared:,} (truncated?)")
            nbytes = held
        ref = self.storages[key] = StorageRef(key, storage_type.dtype, count, location, nbytes)
        return ref

    # -- tensors: the signatures of torch._utils' rebuild functions ---------------------------------
    def _tensor(
        self, storage: object, offset: object, size: object, stride: object, requires_grad: object, dtype: object
    ) -> PickledTensor:
        if not isinstance(storage, StorageRef):
            raise _Refused(f"a tensor whose storage is {storage!r:.80}")
        if not isinstance(dtype, torch.dtype):
            raise _Refused(f"a tensor with dtype {dtype!r:.80}")
        shape, strides, start = _ints(size, "size"), _ints(stride, "stride"), _int(offset, "storage offset")
        if len(shape) != len(strides):
            raise _Refused(f"a tensor with size {shape} and stride {strides} of different lengths")
        if 0 not in shape:
            extent = start + 1  # elements from the storage's start to the view's last one
            for n, s in zip(shape, strides, strict=True):
                extent += (n - 1) * s
            capacity = storage.numel * storage.dtype.itemsize // dtype.itemsize
            if extent > capacity:
                raise _Refused(
                    f"a tensor of size {shape}, stride {strides}, offset {start} needs {extent:,} elements; "
                    f"storage {storage.key!r} holds {capacity:,}"
                )
        return PickledTensor(shape, dtype, strides, start, storage, bool(requires_grad), device=storage.location)

    def _rebuild_tensor(self, storage: object, storage_offset: object, size: object, stride: object) -> PickledTensor:
        dtype = storage.dtype if isinstance(storage, StorageRef) else None
        return self._tensor(storage, storage_offset, size, stride, False, dtype)

    def _rebuild_tensor_v2(
        self,
        storage: object,
        storage_offset: object,
        size: object,
        stride: object,
        requires_grad: object,
        backward_hooks: object,
        metadata: object = None,
    ) -> PickledTensor:
        dtype = storage.dtype if isinstance(storage, StorageRef) else None
        return self._tensor(storage, storage_offset, size, stride, requires_grad, dtype)

    def _rebuild_tensor_v3(
        self,
        storage: object,
        storage_offset: object,
        size: object,
        stride: object,
        requires_grad: object,
        backward_hooks: object,
        dtype: object,
        metadata: object = None,
    ) -> PickledTensor:
        return self._tensor(storage, storage_offset, size, stride, requires_grad, dtype)

    def _rebuild_qtensor(
        self,
        storage: object,
        storage_offset: object,
        size: object,
        stride: object,
        quantizer_params: object,
        requires_grad: object,
        backward_hooks: object,
    ) -> PickledTensor:
        dtype = storage.dtype if isinstance(storage, StorageRef) else None
        tensor = self._tensor(storage, storage_offset, size, stride, requires_grad, dtype)
        params = tuple(quantizer_params) if isinstance(quantizer_params, (tuple, list)) else (quantizer_params,)
        return replace(tensor, quantizer=params)

    def _rebuild_parameter(self, data: object, requires_grad: object, backward_hooks: object) -> PickledTensor:
        if not isinstance(data, PickledTensor):
            raise _Refused(f"a Parameter whose data is {data!r:.80}")
        return replace(data, parameter=True, requires_grad=bool(requires_grad))

    def _rebuild_parameter_with_state(
        self, data: object, requires_grad: object, backward_hooks: object, state: object
    ) -> PickledTensor:
        return replace(self._rebuild_parameter(data, requires_grad, backward_hooks), state=state)

    def _rebuild_meta_tensor_no_storage(
        self, dtype: object, size: object, stride: object, requires_grad: object
    ) -> PickledTensor:
        if not isinstance(dtype, torch.dtype):
            raise _Refused(f"a meta tensor with dtype {dtype!r:.80}")
        shape, strides = _ints(size, "size"), _ints(stride, "stride")
        return PickledTensor(shape, dtype, strides, 0, None, bool(requires_grad), device="meta")

    def _rebuild_wrapper_subclass(
        self,
        cls: object,
        dtype: object,
        size: object,
        stride: object,
        storage_offset: object,
        layout: object,
        device: object,
        requires_grad: object,
    ) -> PickledTensor:
        if not isinstance(dtype, torch.dtype):
            raise _Refused(f"a tensor subclass with dtype {dtype!r:.80}")
        shape, strides = _ints(size, "size"), _ints(stride, "stride")
        offset = _int(storage_offset, "storage offset")
        device_text = _device_text(device)
        grad = bool(requires_grad)
        return PickledTensor(shape, dtype, strides, offset, None, grad, subclass=_class_name(cls), device=device_text)

    def _rebuild_device_tensor_from_cpu_tensor(
        self, data: object, dtype: object, device: object, requires_grad: object
    ) -> PickledTensor:
        if not isinstance(data, PickledTensor) or not isinstance(dtype, torch.dtype):
            raise _Refused(f"a device tensor rebuilt from {data!r:.80} as {dtype!r:.40}")
        return replace(data, dtype=dtype, device=_device_text(device), requires_grad=bool(requires_grad))

    def _rebuild_from_type_v2(self, func: object, new_type: object, args: object, state: object) -> object:
        if not isinstance(args, tuple) or not callable(func):
            raise _Refused(f"a tensor subclass rebuilt by {func!r:.80}")
        made = func(*args)
        if not isinstance(made, PickledTensor):  # func was a stand-in: keep the whole call as a record
            callee = self.resolve("torch._tensor", "_rebuild_from_type_v2", False)
            return _CallResult(callee, func, new_type, args, state)
        name = _class_name(new_type)
        parameter = made.parameter or name in _PARAMETER_CLASSES
        subclass = "" if name in _PLAIN_TENSOR_CLASSES or name in _PARAMETER_CLASSES else name
        return replace(made, parameter=parameter, subclass=subclass, state=state if state else made.state)

    def _rebuild_from_type(self, func: object, new_type: object, args: object, state: object) -> object:
        return self._rebuild_from_type_v2(func, new_type, args, state)

    def _reconstructor(self, cls: object, base: object, state: object) -> object:
        """``copyreg._reconstructor`` (protocols 0 and 1): ``base.__new__(cls)``, then maybe ``base.__init__``."""
        if isinstance(cls, type) and issubclass(cls, PickledObject):
            return cls.__new__(cls) if state is None else cls.__new__(cls, state)
        return _CallResult(self.resolve("copyreg", "_reconstructor", False), cls, base, state)

    def _load_from_bytes(self, data: object) -> object:
        """A storage pickled by plain ``pickle``: its bytes hold a legacy ``torch.save`` of it; read that."""
        if not isinstance(data, bytes):
            raise _Refused(f"torch.storage._load_from_bytes given {type(data).__name__}")
        if self.nested:
            raise _Refused("a storage nested inside a storage's bytes")
        saved = self.records, self.legacy, self.key_prefix
        self.nested += 1
        self.blobs += 1
        self.records, self.legacy, self.key_prefix = None, True, f"bytes{self.blobs}/"
        try:
            stream = io.BytesIO(data)
            first = self.load(stream)
            if first != _LEGACY_MAGIC:
                raise _Refused("a pickled storage whose bytes are not a torch.save stream")
            return _read_legacy_rest(self, stream, len(data))
        finally:
            self.records, self.legacy, self.key_prefix = saved
            self.nested -= 1

    # -- running the unpickler ---------------------------------------------------------------------
    def load(self, stream: IO[bytes]) -> object:
        start = stream.tell()
        head = stream.read(2)
        stream.seek(start)
        py2 = not (len(head) == 2 and head[0] == pickle.PROTO[0] and head[1] >= 3)
        if copyreg._extension_cache or copyreg._inverted_registry:  # type: ignore[attr-defined]
            _refuse_extensions(stream)  # registered codes would bypass find_class: look first
            stream.seek(start)
        return _SafeUnpickler(stream, self, py2).load()


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, stream: IO[bytes], reader: _Reader, py2: bool) -> None:
        super().__init__(stream, encoding="utf-8")
        self._reader = reader
        self._py2 = py2

    def find_class(self, module_name: str, global_name: str, /) -> Any:
        return self._reader.resolve(module_name, global_name, self._py2)

    def persistent_load(self, pid: Any) -> Any:
        return self._reader.persistent(pid)


def _refuse_extensions(stream: IO[bytes]) -> None:
    for opcode, _arg, _pos in pickletools.genops(stream):
        if opcode.name.startswith("EXT"):
            raise _Refused(f"pickle extension code ({opcode.name}) found")


def _size(values: object = ()) -> tuple[int, ...]:
    return _ints(values, "torch.Size")


def _restore_type_tag(value: object, type_str: object = None) -> object:
    return value


def _build_list(data: object) -> object:
    if not isinstance(data, list):
        raise _Refused(f"a TorchScript list tag given {type(data).__name__}")
    return data


def _encode(text: object, encoding: object = "utf-8", errors: object = "strict") -> bytes:
    """``_codecs.encode``, which protocol 2 uses for bytes: text encodings only."""
    if not isinstance(text, str) or encoding not in _TEXT_ENCODINGS or errors != "strict":
        raise _Refused(f"_codecs.encode given {type(text).__name__} and {encoding!r:.40}")
    return text.encode(str(encoding))


def _bytes(*args: object) -> bytes:
    if args == ():
        return b""
    if len(args) == 1 and isinstance(args[0], bytes):
        return args[0]
    raise _Refused("bytes() called with something other than bytes")


def _bytearray(*args: object) -> bytearray:
    if args == ():
        return bytearray()
    if len(args) == 1 and isinstance(args[0], bytes):
        return bytearray(args[0])
    if len(args) == 2 and isinstance(args[0], str) and args[1] in _TEXT_ENCODINGS:
        return bytearray(args[0].encode(str(args[1])))
    raise _Refused("bytearray() called with something other than bytes or text")


# -- file formats ------------------------------------------------------------------------------------


def _read_legacy_rest(reader: _Reader, stream: IO[bytes], size: int) -> object:
    """After the magic number: protocol, system info, the object, the storage keys, then the storages."""
    protocol = reader.load(stream)
    if protocol != _LEGACY_PROTOCOL:
        raise _Refused(f"legacy torch.save protocol {protocol!r:.40}, expected {_LEGACY_PROTOCOL}")
    info = reader.load(stream)
    little = not isinstance(info, dict) or info.get("little_endian", True) is not False
    obj = reader.load(stream)
    keys = reader.load(stream)
    if not isinstance(keys, list):
        raise _Refused(f"legacy torch.save storage list is a {type(keys).__name__}")
    for raw in keys:
        key = reader.key_prefix + (raw.decode("ascii") if isinstance(raw, bytes) else str(raw))
        ref = reader.storages.get(key)
        if ref is None:
            raise _Refused(f"legacy torch.save lists storage {key!r} that no tensor uses")
        header = stream.read(8)
        if len(header) < 8:
            raise _Refused(f"storage {key!r} is cut off (the file ends before it)")
        count = int.from_bytes(header, "little" if little else "big", signed=True)
        if count != ref.numel:
            raise _Refused(f"storage {key!r} holds {count:,} elements, its tensors say {ref.numel:,}")
        stream.seek(ref.nbytes, io.SEEK_CUR)  # skipped, never read
    if stream.tell() > size:
        raise _Refused(f"the storages need {stream.tell():,} bytes, the file has {size:,} (truncated?)")
    return obj


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _why(exc: BaseException) -> str:
    if isinstance(exc, _Refused):
        return str(exc)
    if isinstance(exc, EOFError):
        return "the pickle ends before its STOP opcode (truncated?)"
    if isinstance(exc, ValueError) and "extension code" in str(exc):
        return f"pickle extension code found ({exc})"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _record(archive: torch._C.PyTorchFileReader, name: str, limit: int) -> bytes:
    size = archive.get_record_size(name)
    if size > limit:
        raise _Refused(f"archive record {name} is {size:,} bytes, over the {limit:,} this reader reads")
    data = archive.get_record(name)
    return bytes(data) if not isinstance(data, bytes) else data


def _script_classes(
    archive: torch._C.PyTorchFileReader, names: set[str], classes_named: list[str]
) -> tuple[dict[str, ScriptClass], list[str]]:
    """Parse (never run) the code of each TorchScript class data.pkl names."""
    classes: dict[str, ScriptClass] = {}
    notes: list[str] = []
    modules = sorted({name.rpartition(".")[0] for name in classes_named if name.startswith("__torch__")})
    for module in modules:
        record = f"code/{module.replace('.', '/')}.py"
        if record not in names:
            notes.append(f"TorchScript code for {module} is missing ({record})")
            continue
        try:
            tree = ast.parse(_record(archive, record, _MAX_CODE_BYTES).decode("utf-8"), filename=record)
        except Exception as exc:  # noqa: BLE001 - bad code in a file: one note, the rest still reads
            notes.append(f"TorchScript code for {module} could not be parsed: {_why(exc)}")
            continue
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                classes[f"{module}.{node.name}"] = _script_class(f"{module}.{node.name}", node)
    return classes, notes


def _script_class(qualified: str, node: ast.ClassDef) -> ScriptClass:
    lists: dict[str, tuple[str, ...]] = {"__parameters__": (), "__buffers__": ()}
    constants: dict[str, object] = {}
    for item in node.body:
        if isinstance(item, ast.Assign) and len(item.targets) == 1 and isinstance(item.targets[0], ast.Name):
            target = item.targets[0].id
            if target in lists:
                try:
                    value = ast.literal_eval(item.value)
                except ValueError:
                    continue
                if isinstance(value, list) and all(isinstance(v, str) for v in value):
                    lists[target] = tuple(value)
        elif (
            isinstance(item, ast.AnnAssign)
            and isinstance(item.target, ast.Name)
            and item.value is not None
            and isinstance(item.annotation, ast.Subscript)
            and isinstance(item.annotation.value, ast.Name)
            and item.annotation.value.id == "Final"
        ):
            try:
                constants[item.target.id] = ast.literal_eval(item.value)
            except ValueError:
                continue
    is_module = any(isinstance(base, ast.Name) and base.id == "Module" for base in node.bases)
    return ScriptClass(qualified, is_module, lists["__parameters__"], lists["__buffers__"], MappingProxyType(constants))


def _read_zip(path: Path) -> PickledFile:
    """A torch.save or torch.jit.save archive, through torch's own archive reader (the one torch.load uses)."""
    with path.open("rb") as stream:  # a stream, not a name: any file name reads, UTF-8 or not
        try:
            archive = torch._C.PyTorchFileReader(stream)
        except RuntimeError as exc:
            why = _first_line(exc).split(". ")[0]  # torch's first sentence; the rest is advice about miniz
            raise _Refused(f"not a readable torch zip archive (truncated or corrupt?): {why}") from None
        names = set(archive.get_all_records())  # relative to the archive's folder, like "data.pkl", "data/0"
        if "data.pkl" not in names:
            raise _Refused("a zip archive without data.pkl: not written by torch.save or torch.jit.save")
        scripted = "constants.pkl" in names or any(name.startswith("code/") for name in names)

        def record_size(key: str) -> int | None:
            name = f"data/{key}"
            return archive.get_record_size(name) if name in names else None

        reader = _Reader(record_size)
        root = reader.load(io.BytesIO(_record(archive, "data.pkl", _MAX_RECORD_BYTES)))
        classes: dict[str, ScriptClass] = {}
        notes: list[str] = []
        if scripted:
            classes, notes = _script_classes(archive, names, list(reader.stand_ins))
    return PickledFile(
        str(path),
        "torch.jit.save" if scripted else "torch.save",
        root,
        tuple(reader.stand_ins),
        MappingProxyType(reader.storages),
        MappingProxyType(classes),
        tuple(notes),
    )


def _read_stream(path: Path) -> PickledFile:
    reader = _Reader(None)
    size = path.stat().st_size
    notes: tuple[str, ...] = ()
    with path.open("rb") as stream:
        first = reader.load(stream)
        if isinstance(first, int) and not isinstance(first, bool) and first == _LEGACY_MAGIC:
            reader.legacy = True
            root = _read_legacy_rest(reader, stream, size)
            kind = "torch.save-legacy"
        else:
            root, kind = first, "pickle"
            rest = size - stream.tell()
            if rest > 0:
                notes = (f"{rest:,} bytes after the first pickle were not read",)
    return PickledFile(
        str(path), kind, root, tuple(reader.stand_ins), MappingProxyType(reader.storages), MappingProxyType({}), notes
    )


def read_pickled(path: str | Path) -> PickledFile:
    """Read a torch checkpoint or pickle without importing or calling anything it names.

    Raises :class:`CheckpointError` (one line: the file, what was found) for a file that is missing,
    empty, corrupt, in a format this reader does not take (the pre-0.4 tar format, pickles with
    extension codes or out-of-band buffers), or whose tensor records are inconsistent.
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"{file}: no such file" if not file.exists() else f"{file} is not a file")
    size = file.stat().st_size
    if size == 0:
        raise CheckpointError(f"{file} is empty (0 bytes), not a checkpoint")
    with file.open("rb") as stream:
        head = stream.read(262)
    if head[257:262] == b"ustar":
        raise CheckpointError(f"{file} is a tar archive (torch.save's format before PyTorch 0.4), which is not read")
    try:
        if head.startswith(b"PK\x03\x04"):
            return _read_zip(file)
        return _read_stream(file)
    except Exception as exc:  # noqa: BLE001 - anything the file provokes: one clear line, never a traceback
        raise CheckpointError(f"{file} cannot be read safely: {_why(exc)}") from None
