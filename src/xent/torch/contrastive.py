"""SigLIP's sigmoid loss and CLIP's softmax loss in PyTorch: chunked, and across processes.

Same formulas as :func:`xent.siglip_loss` and :func:`xent.clip_loss`, with two
differences of scale: the N x N logits are processed ``chunk_size`` rows at a
time (they and their gradient never exist whole), and with a ``group`` each
rank holds only its own pairs while the other side's embeddings travel round a
ring of the ranks. The algorithms are described in :mod:`xent.torch._contrastive`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from xent._lib.validation import check_fraction
from xent.torch._contrastive import CLIPFunction, Ring, SigLIPFunction, single_ring
from xent.torch._options import check_chunk_size, compiling, compute_dtype, default_rows
from xent.torch.functional import _FLOATS, _check_float

__all__ = ["CLIPLoss", "SigLIPLoss", "clip_loss", "siglip_loss"]

_DISTRIBUTED_DOC = """
    Across processes (``group`` given): each rank passes its own rows of ``x`` and
    ``y`` (any number N_r >= 1 of pairs, the same d and dtype on every rank) and
    the loss covers the global batch of N = sum_r N_r pairs. The other side's
    embeddings travel round a ring of the ranks (point-to-point sends to the right
    neighbour), so no rank ever holds more than one other rank's block of
    embeddings or more than ``chunk_size x N_t`` logits. Every rank of the group
    must call the function (and run backward) in the same order, as with any
    collective. ``scale`` and ``bias`` must have the same value on every rank (as
    DistributedDataParallel keeps parameters).

    Gradient convention (DistributedDataParallel's, as in open_clip): each rank
    returns its share of the loss, and the mean of the ranks' losses is the
    full-batch loss. Gradients flow back through the exchange to the rank that
    owns each embedding, so each rank's gradient for its rows of ``x`` and ``y``
    is ``world_size`` times the full-batch gradient for those rows, and DDP's
    averaging of parameter gradients gives exactly the full-batch gradient of
    the encoders (and of a learnable scale/bias, whose per-rank gradients
    average to the full-batch one). For the other convention (the *sum* of the
    ranks' losses is the full-batch loss, and each embedding gets the full-batch
    gradient itself), divide by the group size::

        loss = xent.torch.siglip_loss(x, y, scale, bias, group=g) / dist.get_world_size(g)

    Only ``batch_isend_irecv`` and ``all_gather`` / ``all_reduce`` are used, which
    gloo and NCCL both support. Nothing reads a device value on the host: every
    rank's N and d (host metadata, to size the receive buffers and to reject a
    group whose ranks disagree) are exchanged once per call over the group when
    it has a CPU backend (gloo, or ``"cpu:gloo,cuda:nccl"``), otherwise over a
    gloo group with the same ranks created on first use. A rank whose input is
    invalid makes every rank raise, instead of leaving the others waiting. Under
    ``torch.compile`` the distributed path runs eagerly (point-to-point sends do
    not trace: one graph break around the loss); without a group the loss
    compiles whole (``fullgraph=True``).
"""

_CPU_GROUPS: dict[Any, Any] = {}


def _cpu_group(group: Any) -> Any:
    """The group itself when it can move CPU tensors, else a gloo group with the same ranks (created once)."""
    backend = str(dist.get_backend(group))
    if "gloo" in backend or "mpi" in backend:
        return group
    if group not in _CPU_GROUPS:
        _CPU_GROUPS[group] = dist.new_group(
            ranks=dist.get_process_group_ranks(group), backend="gloo", use_local_synchronization=True
        )
    return _CPU_GROUPS[group]


def _scalar(name: str, value: Any, like: torch.Tensor, *, positive: bool) -> torch.Tensor:
    """A Python number or a 0-d floating tensor on ``like``'s device; values checked where that is free."""
    if isinstance(value, torch.Tensor):
        if value.dim() != 0 or not value.dtype.is_floating_point:
            raise ValueError(
                f"`{name}` must be a real number or a 0-d floating tensor, got a tensor of shape "
                f"{tuple(value.shape)} and dtype {value.dtype}"
            )
        if value.device != like.device:
            raise ValueError(f"`{name}` must be on the device of `x` ({like.device}), got {value.device}")
        t = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        t = torch.tensor(float(value), dtype=compute_dtype(like.dtype), device=like.device)
    else:
        raise TypeError(f"`{name}` must be a real number or a 0-d floating tensor, got {type(value).__name__}")
    what = "a finite number > 0 (the inverse temperature)" if positive else "a finite number"
    ok = torch.isfinite(t) & (t > 0) if positive else torch.isfinite(t)
    if compiling() or t.device.type == "meta":
        return t
    if t.device.type == "cpu":
        if not bool(ok):
            raise ValueError(f"`{name}` must be {what}, got {t.item()!r}")
    else:  # no host synchronisation: the device fails asynchronously
        torch._assert_async(ok, f"`{name}` must be {what}")
    return t


def _check_local(x: Any, y: Any) -> None:
    _check_float("x", x)
    _check_float("y", y)
    if x.dim() != 2:
        raise ValueError(f"`x` must have shape (N, d) (one embedding per row), got shape {tuple(x.shape)}")
    if y.dim() != 2:
        raise ValueError(f"`y` must have shape (N, d) (one embedding per row), got shape {tuple(y.shape)}")
    if y.shape[1] != x.shape[1]:
        raise ValueError(
            f"`y` must have d = {x.shape[1]} columns (the embedding size of `x`), got shape {tuple(y.shape)}"
        )
    if y.shape[0] != x.shape[0]:
        raise ValueError(
            f"`y` must have shape {tuple(x.shape)} (row i of `y` is the match of row i of `x`), "
            f"got {tuple(y.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError("`x` and `y` must hold at least one pair (N >= 1), got N = 0")
    if y.dtype != x.dtype:
        raise TypeError(f"`y` must have the dtype of `x` ({x.dtype}), got {y.dtype}")
    if y.device != x.device:
        raise ValueError(f"`y` must be on the device of `x` ({x.device}), got {y.device}")


def _ring(group: Any, x: Any, error: Exception | None) -> Ring:
    """Exchange every rank's (ok, N, d, dtype) over a CPU group; raise on every rank if any is wrong."""
    if not dist.is_available() or not dist.is_initialized():
        raise ValueError("`group` needs an initialised torch.distributed (dist.init_process_group); got a group "
                         "but no default process group")
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    if rank < 0:
        raise ValueError("`group` must contain this process (dist.get_rank(group) is -1)")
    ok = error is None
    meta = torch.tensor(
        [int(ok), x.shape[0] if ok else -1, x.shape[1] if ok else -1, _FLOATS.index(x.dtype) if ok else -1],
        dtype=torch.int64,
    )
    out = [torch.empty_like(meta) for _ in range(world)]
    dist.all_gather(out, meta, group=_cpu_group(group))
    rows = [[int(v) for v in m.tolist()] for m in out]
    if error is not None:
        raise type(error)(f"{error} (on rank {rank} of `group`; every rank of the group stops here)")
    bad = [r for r, m in enumerate(rows) if not m[0]]
    if bad:
        raise ValueError(f"rank {bad[0]} of `group` has invalid input (its own error says why); every rank stops here")
    ds = [m[2] for m in rows]
    if len(set(ds)) > 1:
        other = next(r for r, v in enumerate(ds) if v != ds[rank])
        raise ValueError(
            f"`group`: the ranks disagree on d (the embedding size of `x` and `y`): rank {rank} has d = {ds[rank]}, "
            f"rank {other} has d = {ds[other]}"
        )
    dts = [m[3] for m in rows]
    if len(set(dts)) > 1:
        other = next(r for r, v in enumerate(dts) if v != dts[rank])
        raise TypeError(
            f"`group`: the ranks disagree on the dtype of `x` and `y`: rank {rank} has {_FLOATS[dts[rank]]}, "
            f"rank {other} has {_FLOATS[dts[other]]}"
        )
    return Ring(group=group, rank=rank, sizes=tuple(m[1] for m in rows))


def _prepare(
    x: Tensor,
    y: Tensor,
    scalars: dict[str, tuple[Any, bool]],
    chunk_size: int | None,
    group: Any,
    extra_checks: Callable[[], None] | None = None,
) -> tuple[Ring, int, dict[str, Tensor]]:
    """Validate locally; with a group, agree on the sizes (or fail on every rank). Returns ring, rows, scalars."""
    error: Exception | None = None
    out: dict[str, torch.Tensor] = {}
    try:
        rows = check_chunk_size(chunk_size)
        _check_local(x, y)
        for name, (value, positive) in scalars.items():
            out[name] = _scalar(name, value, x, positive=positive)
        if extra_checks is not None:
            extra_checks()
    except (TypeError, ValueError) as exc:
        if group is None:
            raise
        error = exc
    if group is None:
        ring = single_ring(x.shape[0])
    else:
        ring = _ring(group, x, error)
    # Rows per chunk: about 32 MiB of float32 logits against the widest block: large enough for full-speed
    # matmuls and few sweeps of the (N, d) gradient accumulator, small beside the N x N logits.
    rows = rows or default_rows(max(ring.sizes), target_bytes=32 * 2**20, lo=16, hi=4096)
    return ring, rows, out


def _needs(*tensors: torch.Tensor) -> tuple[bool, ...]:
    on = torch.is_grad_enabled()
    return tuple(on and t.requires_grad for t in tensors)


def siglip_loss(
    x: Tensor,
    y: Tensor,
    scale: float | Tensor,
    bias: float | Tensor,
    *,
    chunk_size: int | None = None,
    group: Any = None,
) -> Tensor:
    r"""SigLIP's pairwise sigmoid loss, chunked, optionally over the ranks of a process group.

    With logits :math:`l_{ij} = s\, x_i \cdot y_j + b` and :math:`z_{ij} = +1` on the
    diagonal (the matched pairs), :math:`-1` elsewhere,

    .. math:: \mathrm{loss} = -\frac{1}{N} \sum_{i,j} \log \sigma(z_{ij}\, l_{ij})

    divided by N (not :math:`N^2`), as the SigLIP paper and open_clip do; this is
    :func:`xent.siglip_loss` with ``reduction="mean"``. The embeddings are used as
    given (no normalisation).

    Parameters
    ----------
    x, y : Tensor, shape (N, d)
        Matched pairs by row (float16, bfloat16, float32 or float64, one dtype).
    scale : float or 0-d Tensor, > 0
        :math:`s` (SigLIP: ``log_scale.exp()``, initialised to 10). May require grad.
    bias : float or 0-d Tensor
        :math:`b` (SigLIP initialises it to -10). May require grad.
    chunk_size : int >= 1, optional
        Rows of ``x`` per chunk: at most ``chunk_size x N`` logits exist at once
        (``x N_t`` per ring step with a group). Default: about 32 MiB of float32 logits.
    group : torch.distributed ProcessGroup, optional
        Compute the loss of the global batch spread over the group's ranks (below).

    Returns
    -------
    Tensor, 0-d
        The loss (this rank's share with a group); float32 for float16/bfloat16/float32
        inputs, float64 for float64.

    Notes
    -----
    Single process: one pass over the chunks computes the loss and, when anything
    requires grad, every gradient (three matmuls per chunk, like the unchunked code);
    backward only scales them. Memory beyond the inputs and their gradients: two
    float32 ``chunk_size x N`` buffers. :math:`-\log\sigma` is exact for any finite
    logit (``log_sigmoid``), so confident pairs keep their digits.
    {distributed}
    Examples
    --------
    >>> import torch, xent, xent.torch
    >>> x = torch.nn.functional.normalize(torch.randn(6, 4, dtype=torch.float64), dim=1).requires_grad_()
    >>> y = torch.nn.functional.normalize(torch.randn(6, 4, dtype=torch.float64), dim=1)
    >>> log_scale = torch.tensor(2.3, dtype=torch.float64, requires_grad=True)
    >>> loss = xent.torch.siglip_loss(x, y, log_scale.exp(), -10.0, chunk_size=4)
    >>> loss.backward()
    >>> bool(torch.isclose(loss, xent.siglip_loss(x, y, scale=log_scale.exp(), bias=-10.0)))
    True

    References
    ----------
    .. [1] X. Zhai, B. Mustafa, A. Kolesnikov, L. Beyer, "Sigmoid Loss for Language
       Image Pre-Training", ICCV 2023 (arXiv:2303.15343), sec. 3.3 (the ring).
    .. [2] open_clip, ``open_clip.loss.SigLipLoss``.
    """
    run: Callable[..., Tensor] = _siglip if group is None else _siglip_eager
    return run(x, y, scale, bias, chunk_size, group)


def _siglip(
    x: Tensor, y: Tensor, scale: float | Tensor, bias: float | Tensor, chunk_size: int | None, group: Any
) -> Tensor:
    ring, rows, sc = _prepare(x, y, {"scale": (scale, True), "bias": (bias, False)}, chunk_size, group)
    s, b = sc["scale"], sc["bias"]
    loss: Tensor = SigLIPFunction.apply(x, y, s, b, ring, rows, _needs(x, y, s, b))  # type: ignore[no-untyped-call]
    return loss


def clip_loss(
    x: Tensor,
    y: Tensor,
    scale: float | Tensor,
    *,
    label_smoothing: float = 0.0,
    chunk_size: int | None = None,
    group: Any = None,
) -> Tensor:
    r"""CLIP's symmetric softmax cross-entropy, chunked, optionally over the ranks of a process group.

    With logits :math:`l_{ij} = s\, x_i \cdot y_j`, the loss is the mean of the
    softmax cross-entropy of the rows (``x`` to ``y``) and of the columns (``y`` to
    ``x``), the matched pair being the target:
    ``(F.cross_entropy(l, arange(N)) + F.cross_entropy(l.T, arange(N))) / 2``,
    open_clip's ``ClipLoss``; :func:`xent.clip_loss` with ``reduction="mean"``.
    The embeddings are used as given (no normalisation).

    Parameters
    ----------
    x, y : Tensor, shape (N, d)
        Matched pairs by row.
    scale : float or 0-d Tensor, > 0
        :math:`s = 1/\tau` (CLIP: ``logit_scale.exp()``, at most 100). May require grad.
    label_smoothing : float in [0, 1]
        Targets :math:`(1-e)[i = j] + e/N`, as ``F.cross_entropy(label_smoothing=e)``.
    chunk_size : int >= 1, optional
        Rows of ``x`` per chunk (default: about 32 MiB of float32 logits).
    group : torch.distributed ProcessGroup, optional
        Compute the loss of the global batch spread over the group's ranks (below).

    Returns
    -------
    Tensor, 0-d
        The loss (this rank's share with a group); float32 for float16/bfloat16/float32
        inputs, float64 for float64.

    Notes
    -----
    The forward pass computes the row and the column log-sum-exp chunk by chunk
    (one matmul per chunk); backward recomputes each chunk's logits and turns them
    into the gradient (three matmuls per chunk): four matmuls in all, against three
    for the unchunked code, which instead writes and reads several N x N arrays.
    Memory beyond the inputs and their gradients: two float32 ``chunk_size x N``
    buffers.
    {distributed}
    Examples
    --------
    >>> import torch, xent, xent.torch
    >>> x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    >>> y = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    >>> loss = xent.torch.clip_loss(x, y, 2.0, chunk_size=4)
    >>> loss.backward()
    >>> labels = torch.arange(6)
    >>> logits = 2.0 * x @ y.T
    >>> ref = (torch.nn.functional.cross_entropy(logits, labels) + torch.nn.functional.cross_entropy(logits.T, labels)) / 2
    >>> bool(torch.isclose(loss, ref))
    True

    References
    ----------
    .. [1] A. Radford et al., "Learning Transferable Visual Models From Natural
       Language Supervision", ICML 2021 (arXiv:2103.00020).
    .. [2] open_clip, ``open_clip.loss.ClipLoss``; Chen et al., "Breaking the Memory
       Barrier: Near Infinite Batch Size Scaling for Contrastive Loss" (Inf-CL), 2024.
    """
    e = check_fraction("label_smoothing", label_smoothing)
    run: Callable[..., Tensor] = _clip if group is None else _clip_eager
    return run(x, y, scale, e, chunk_size, group)


def _clip(x: Tensor, y: Tensor, scale: float | Tensor, e: float, chunk_size: int | None, group: Any) -> Tensor:
    ring, rows, sc = _prepare(x, y, {"scale": (scale, True)}, chunk_size, group)
    s = sc["scale"]
    loss: Tensor = CLIPFunction.apply(x, y, s, ring, rows, e, _needs(x, y, s))  # type: ignore[no-untyped-call]
    return loss


# Point-to-point sends do not trace: under torch.compile the distributed path runs eagerly (one graph
# break around it); without a group the whole loss compiles (fullgraph=True works).
_siglip_eager = torch.compiler.disable(_siglip)  # type: ignore[no-untyped-call]
_clip_eager = torch.compiler.disable(_clip)  # type: ignore[no-untyped-call]


siglip_loss.__doc__ = (siglip_loss.__doc__ or "").replace("{distributed}", _DISTRIBUTED_DOC)
clip_loss.__doc__ = (clip_loss.__doc__ or "").replace("{distributed}", _DISTRIBUTED_DOC)


class _Contrastive(nn.Module):
    """Shared state: the learnable log of the scale (and other 0-d values), chunk_size and group."""

    def __init__(
        self,
        values: dict[str, float],
        *,
        learnable: bool,
        chunk_size: int | None,
        group: Any,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
    ) -> None:
        super().__init__()
        check_chunk_size(chunk_size)
        for name, v in values.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"`{name}` must be a finite number, got {v!r}")
            t = torch.tensor(float(v), device=device, dtype=dtype or torch.get_default_dtype())
            if learnable:
                setattr(self, name, nn.Parameter(t))
            else:
                self.register_buffer(name, t)
        self.chunk_size = chunk_size
        self.group = group

    @staticmethod
    def _log(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
            raise ValueError(f"`{name}` must be a finite number > 0, got {value!r}")
        return math.log(value)


class SigLIPLoss(_Contrastive):
    """SigLIP's loss with its learnable temperature and bias: ``loss_fn(x, y)``.

    Holds ``log_scale`` (:math:`t'`, the scale is :math:`e^{t'}`) and ``bias``, initialised
    as in the SigLIP paper (scale 10, bias -10); see :func:`xent.torch.siglip_loss`.

    Parameters
    ----------
    init_scale : float > 0
    init_bias : float
    learnable : bool
        Parameters (True) or fixed buffers (False).
    chunk_size, group
        As in :func:`xent.torch.siglip_loss`.

    Examples
    --------
    >>> import torch, xent.torch
    >>> loss_fn = xent.torch.SigLIPLoss()
    >>> x = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    >>> y = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    >>> loss = loss_fn(x, y)
    >>> loss.backward()
    >>> loss_fn.bias.grad is not None
    True
    """

    log_scale: Tensor
    bias: Tensor

    def __init__(
        self,
        *,
        init_scale: float = 10.0,
        init_bias: float = -10.0,
        learnable: bool = True,
        chunk_size: int | None = None,
        group: Any = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        values = {"log_scale": self._log("init_scale", init_scale), "bias": init_bias}
        super().__init__(values, learnable=learnable, chunk_size=chunk_size, group=group, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return siglip_loss(x, y, self.log_scale.exp(), self.bias, chunk_size=self.chunk_size, group=self.group)

    def extra_repr(self) -> str:
        return f"chunk_size={self.chunk_size}, distributed={self.group is not None}"


class CLIPLoss(_Contrastive):
    """CLIP's loss with its learnable temperature: ``loss_fn(x, y)``.

    Holds ``log_scale`` (CLIP's ``logit_scale``), initialised to :math:`\\log(1/0.07)`;
    the scale used is :math:`\\min(e^{\\text{log\\_scale}}, \\text{max\\_scale})` (CLIP clips it at
    100; above the cap its gradient is 0). See :func:`xent.torch.clip_loss`.

    Parameters
    ----------
    init_scale : float > 0
    max_scale : float > 0 or None
    learnable : bool
    label_smoothing, chunk_size, group
        As in :func:`xent.torch.clip_loss`.

    Examples
    --------
    >>> import torch, xent.torch
    >>> loss_fn = xent.torch.CLIPLoss()
    >>> x = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    >>> y = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    >>> loss = loss_fn(x, y)
    >>> loss.backward()
    >>> loss_fn.log_scale.grad is not None
    True
    """

    log_scale: Tensor

    def __init__(
        self,
        *,
        init_scale: float = 1 / 0.07,
        max_scale: float | None = 100.0,
        learnable: bool = True,
        label_smoothing: float = 0.0,
        chunk_size: int | None = None,
        group: Any = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        values = {"log_scale": self._log("init_scale", init_scale)}
        super().__init__(values, learnable=learnable, chunk_size=chunk_size, group=group, device=device, dtype=dtype)
        self.max_log_scale = None if max_scale is None else self._log("max_scale", max_scale)
        self.max_scale = max_scale
        self.label_smoothing = check_fraction("label_smoothing", label_smoothing)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        log_scale = self.log_scale
        if self.max_log_scale is not None:
            log_scale = log_scale.clamp(max=self.max_log_scale)
        return clip_loss(x, y, log_scale.exp(), label_smoothing=self.label_smoothing, chunk_size=self.chunk_size,
                         group=self.group)

    def extra_repr(self) -> str:
        return (f"max_scale={self.max_scale}, label_smoothing={self.label_smoothing}, chunk_size={self.chunk_size}, "
                f"distributed={self.group is not None}")
