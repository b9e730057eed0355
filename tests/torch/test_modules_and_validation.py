"""nn.Module wrappers, argument validation messages and the import contract."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import xent.torch as xt

from xtorch_helpers import assert_close, make_problem


def test_cross_entropy_loss_module_matches_torch():
    z = torch.randn(6, 5, 3, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 5, (6, 3))
    t[0, 0] = -100
    w = torch.rand(5, dtype=torch.float64) + 0.5
    ours = xt.CrossEntropyLoss(w, label_smoothing=0.1)(z, t)
    ref = nn.CrossEntropyLoss(w, label_smoothing=0.1)(z, t)
    assert_close(ours, ref, rtol=1e-12)
    assert_close(torch.autograd.grad(ours, z)[0], torch.autograd.grad(ref, z)[0], rtol=1e-12)
    m = xt.CrossEntropyLoss(w, reduction="sum")
    assert "class_weights" in m.state_dict()
    assert_close(m(z, t), F.cross_entropy(z, t, weight=w, reduction="sum"), rtol=1e-12)


def test_linear_cross_entropy_loss_module_matches_linear_then_ce():
    torch.manual_seed(0)
    m = xt.LinearCrossEntropyLoss(8, 21, bias=True, label_smoothing=0.05, dtype=torch.float64)
    lin = nn.Linear(8, 21, dtype=torch.float64)
    lin.load_state_dict({"weight": m.weight.detach(), "bias": m.bias.detach()})
    h = torch.randn(2, 7, 8, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 21, (2, 7))
    ours = m(h, t)
    ref = F.cross_entropy(lin(h).flatten(0, 1), t.flatten(), label_smoothing=0.05)
    assert_close(ours, ref, rtol=1e-12)
    ours.backward()
    ref.backward()
    assert_close(m.weight.grad, lin.weight.grad, rtol=1e-12)
    assert_close(m.bias.grad, lin.bias.grad, rtol=1e-12)
    assert m.weight.shape == (21, 8) and m.bias.shape == (21,)
    assert xt.LinearCrossEntropyLoss(8, 21, bias=False).bias is None


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"label_smoothing": 1.5}, ValueError, r"`label_smoothing` must be in \[0, 1\], got 1.5"),
        ({"reduction": "avg"}, ValueError, r"`reduction` must be one of 'mean', 'sum', 'none', got 'avg'"),
        ({"z_loss": -1.0}, ValueError, r"`z_loss` must be a finite number >= 0, got -1.0"),
        ({"softcap": 0.0}, ValueError, r"`softcap` must be None or a finite number > 0, got 0.0"),
        ({"chunk_size": 0}, ValueError, r"`chunk_size` must be None or an integer >= 1, got 0"),
        ({"ignore_index": 1.5}, TypeError, r"`ignore_index` must be an integer, got 1.5"),
        ({"class_weights": torch.tensor([1.0, -1.0, 1.0, 1.0, 1.0], dtype=torch.float64)}, ValueError,
         r"`class_weights` must be finite and >= 0, got .*-1.0.* at index 1"),
        ({"class_weights": torch.ones(4, dtype=torch.float64)}, ValueError,
         r"`class_weights` must have shape \(5,\) \(one weight per class\), got \(4,\)"),
    ],
)
def test_option_errors_name_argument_expected_and_got(kwargs, exc, message):
    h, w, b, t = make_problem(n=4, d=3, v=5, ignore_every=0)
    with pytest.raises(exc, match=message):
        xt.linear_cross_entropy(h, w, t, **kwargs)
    with pytest.raises(exc, match=message):
        xt.cross_entropy(h @ w.T, t, **kwargs)


def test_shape_dtype_and_label_errors():
    h, w, b, t = make_problem(n=4, d=3, v=5, ignore_every=0)
    with pytest.raises(ValueError, match=r"`weight` must have shape \(V, 3\) \(d from hidden\), got \(5, 4\)"):
        xt.linear_cross_entropy(h, torch.zeros(5, 4, dtype=h.dtype), t)
    with pytest.raises(ValueError, match=r"`target` must have shape \(4,\) \(hidden.shape\[:-1\]\), got \(3,\)"):
        xt.linear_cross_entropy(h, w, t[:3])
    with pytest.raises(ValueError, match=r"`bias` must have shape \(5,\) \(V from weight\), got \(4,\)"):
        xt.linear_cross_entropy(h, w, t, bias=torch.zeros(4, dtype=h.dtype))
    with pytest.raises(TypeError, match=r"`target` must hold integer class labels, got dtype torch.float32"):
        xt.linear_cross_entropy(h, w, t.float())
    with pytest.raises(TypeError, match=r"`weight` must have the dtype of `hidden` \(torch.float64\), got torch.float32"):
        xt.linear_cross_entropy(h, w.float(), t)
    bad = t.clone()
    bad[2] = 5
    with pytest.raises(ValueError, match=r"`target` must hold class labels in \[0, 5\) or equal ignore_index=-100, got .*5.* at index 2"):
        xt.linear_cross_entropy(h, w, bad)
    bad[2] = -1
    with pytest.raises(ValueError, match=r"`target` must hold class labels .* got .*-1.* at index 2"):
        xt.cross_entropy(h @ w.T, bad)
    with pytest.raises(ValueError, match=r"`target` must have shape \(4,\) \(input's shape without the class dimension 1\)"):
        xt.cross_entropy(h @ w.T, t[:2])
    with pytest.raises(TypeError, match=r"`input` must be a torch.Tensor, got list"):
        xt.cross_entropy([[1.0]], t)
    with pytest.raises(ValueError, match=r"`label_smoothing` must be in \[0, 1\], got 2"):
        xt.CrossEntropyLoss(label_smoothing=2)


def test_import_xent_does_not_import_torch():
    code = "import sys, xent; assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_import_xent_torch_without_torch_gives_install_hint():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "try:\n    import xent.torch\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert 'pip install "xent-ml[torch]"' in out.stdout
