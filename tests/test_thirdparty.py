"""The third-party table: looked at only when the library is imported, matched by class identity."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from torch import nn

from torchlstm_params import Registry, default_registry, summarize
from torchlstm_params.thirdparty import ANCHORS, CLASSES, infer_checkpoint

LIBRARIES = ("torchaudio", "speechbrain", "neuralforecast", "pytorch_forecasting", "torch_geometric_temporal")


def test_importing_and_summarizing_imports_none_of_the_libraries():
    code = textwrap.dedent(
        f"""
        import sys
        from torch import nn
        import torchlstm_params
        torchlstm_params.summarize(nn.Sequential(nn.LSTM(3, 4), nn.Linear(4, 2)))
        print(sorted(m for m in sys.modules if m.split('.')[0] in {LIBRARIES!r}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_a_class_of_the_same_name_elsewhere_is_not_recognised():
    # A user's class that merely borrows a library's module and class names is not that class.
    fake = type("LiGRU", (nn.Module,), {"__module__": "speechbrain.nnet.RNN"})
    assert default_registry.lookup(fake) is None
    assert summarize(fake()).recurrent == ()


def test_by_name_entries_resolve_only_the_object_the_module_defines():
    registry = Registry()
    registry.register_by_name(__name__, "Mine", lambda m: {"kind": "GRUCell", "input_size": 2, "hidden_size": 3})
    assert registry.lookup(Mine) is not None
    assert Mine in registry
    other = type("Mine", (nn.Module,), {"__module__": __name__})
    assert registry.lookup(other) is None
    registry.unregister(Mine)
    assert registry.lookup(Mine) is None


class Mine(nn.Module):
    pass


def test_every_class_is_named_once_and_every_anchor_has_a_class():
    origins = [c.origin for c in CLASSES]
    assert len(origins) == len(set(origins)) == 20
    assert {a.origin for a in ANCHORS} <= set(origins)


def test_checkpoint_anchors_need_their_companions():
    # A lone p2g.weight of the wrong shape, or an x2g without p2g, is not a _CustomLSTM.
    assert infer_checkpoint({"p2g.weight": (8, 3), "x2g.weight": (8, 3)}) == []
    assert infer_checkpoint({"a.weight_ir": (4, 3)}) == []
    found = infer_checkpoint({"x2g.weight": (8, 3), "p2g.weight": (8, 2), "c_norm.weight": (2,)})
    assert [(f.path, f.recurrence.kind) for f in found] == [("", "_CustomLSTM")]
    assert "inferred from tensor names and shapes as torchaudio.models.rnnt._CustomLSTM" in found[0].recurrence.note
