"""PyTorch face of xent: autograd-native losses and a fused linear + cross-entropy.

Imported only on request (``import xent.torch``); ``import xent`` never imports torch.

- :func:`linear_cross_entropy` / :class:`LinearCrossEntropyLoss`: cross-entropy of
  ``hidden @ weight.T + bias`` computed chunk by chunk, never materialising the
  N x V logits or their gradient.
- :func:`cross_entropy` / :class:`CrossEntropyLoss`: the same loss on materialised
  logits (class dimension 1, like ``F.cross_entropy``).

Both support ``ignore_index``, ``label_smoothing``, ``class_weights``, ``z_loss``,
``softcap``, ``reduction`` in {"mean", "sum", "none"} and ``return_lse``, with the
conventions of ``xent.sparse_categorical_cross_entropy``, and ``group=`` for a
vocabulary split across the ranks of a torch.distributed process group.
The core losses given torch tensors run the same kernels (``xent.torch._route``).

- :func:`siglip_loss` / :class:`SigLIPLoss` and :func:`clip_loss` / :class:`CLIPLoss`:
  the contrastive losses of ``xent.siglip_loss`` / ``xent.clip_loss``, chunked (the
  N x N logits never exist whole) and across the ranks of a process group (a ring).
"""

try:
    import torch as _torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        'xent.torch needs PyTorch, which is not installed. Install it with: pip install "xent-ml[torch]"'
    ) from exc

from xent.torch.contrastive import CLIPLoss, SigLIPLoss, clip_loss, siglip_loss
from xent.torch.functional import cross_entropy, linear_cross_entropy
from xent.torch.modules import CrossEntropyLoss, LinearCrossEntropyLoss

__all__ = [
    "CLIPLoss",
    "CrossEntropyLoss",
    "LinearCrossEntropyLoss",
    "SigLIPLoss",
    "clip_loss",
    "cross_entropy",
    "linear_cross_entropy",
    "siglip_loss",
]
