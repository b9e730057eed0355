"""Public functions of :mod:`xent.torch`: the fused linear cross-entropy and cross-entropy on logits."""

from __future__ import annotations

import math
from typing import Any, Literal, overload

import torch
from torch import Tensor

from xent._lib.typing import Reduction
from xent.losses._common import check_flag
from xent.torch._linear import fused_linear_cross_entropy
from xent.torch._logits import CrossEntropyFunction, logits_block_rows
from xent.torch._options import (
    check_chunk_size,
    check_class_weights,
    check_options,
    check_target,
    check_tensor,
    compute_dtype,
    default_rows,
)
from xent.torch._vocab_parallel import vocab_shard

__all__ = ["cross_entropy", "linear_cross_entropy"]

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _check_float(name: str, x: Any) -> None:
    check_tensor(name, x)
    if x.dtype not in _FLOATS:
        raise TypeError(f"`{name}` must be a floating tensor (float16, bfloat16, float32, float64), got dtype {x.dtype}")


@overload
def linear_cross_entropy(
    hidden: Tensor,
    weight: Tensor,
    target: Tensor,
    /,
    *,
    bias: Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    class_weights: Tensor | None = None,
    z_loss: float = 0.0,
    softcap: float | None = None,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    return_lse: Literal[False] = False,
    group: Any = None,
    reduce_hidden_grad: bool = True,
) -> Tensor: ...


@overload
def linear_cross_entropy(
    hidden: Tensor,
    weight: Tensor,
    target: Tensor,
    /,
    *,
    bias: Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    class_weights: Tensor | None = None,
    z_loss: float = 0.0,
    softcap: float | None = None,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    return_lse: Literal[True],
    group: Any = None,
    reduce_hidden_grad: bool = True,
) -> tuple[Tensor, Tensor]: ...


def linear_cross_entropy(
    hidden: Tensor,
    weight: Tensor,
    target: Tensor,
    /,
    *,
    bias: Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    class_weights: Tensor | None = None,
    z_loss: float = 0.0,
    softcap: float | None = None,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    return_lse: bool = False,
    group: Any = None,
    reduce_hidden_grad: bool = True,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""Cross-entropy of ``hidden @ weight.T + bias`` without materialising the logits.

    For each row ``i`` with logits :math:`z_i = W h_i + b` (optionally softcapped,
    :math:`z \leftarrow s \tanh(z / s)` as in Gemma 2), label :math:`y_i`, class
    weights :math:`w` (all 1 by default) and label smoothing :math:`e` over
    :math:`V` classes, with :math:`q = (1-e)\,\mathrm{onehot}(y_i) + e/V`:

    .. math::

        \ell_i = -\sum_c w_c q_c \log \mathrm{softmax}(z_i)_c
                 + \zeta\, w_{y_i} \operatorname{logsumexp}(z_i)^2

    The second term is the z-loss of PaLM, weighted by :math:`w_{y_i}` so that it
    follows the same weighted mean. Reductions: ``"mean"`` is
    :math:`\sum_i \ell_i / \sum_i w_{y_i}` over non-ignored rows (PyTorch's rule;
    0 with zero gradient when every row is ignored or the total weight is 0, where
    PyTorch returns NaN), ``"sum"`` is :math:`\sum_i \ell_i`, ``"none"`` gives
    :math:`\ell_i` per row (0 on ignored rows). Without z-loss and softcap this
    equals ``F.cross_entropy(hidden @ weight.T + bias, target, weight=class_weights,
    label_smoothing=e, ignore_index=..., reduction=...)`` and
    ``xent.sparse_categorical_cross_entropy`` on the materialised logits.

    Rows are processed ``chunk_size`` at a time; the softmax, loss and gradient
    of each small block of rows are computed in float32 (float64 for float64
    inputs), and ``grad_weight`` / ``grad_bias`` are accumulated in float32
    whatever the input dtype, then returned in the parameter's dtype. With
    ``reduction="mean"``/``"sum"`` the gradients are computed during the forward
    pass and kept until backward (like Liger Kernel); ``reduction="none"``
    recomputes the logits in backward, so any upstream gradient is handled
    exactly. A second backward (``retain_graph=True``) recomputes the gradients;
    a backward with ``create_graph=True`` (gradient penalties, double backward)
    differentiates the materialised formula, so it is exact but costs the N x V
    logits once (not supported with ``group``, where it raises).

    No host synchronisation on accelerators and no data-dependent shapes, so it
    runs under ``torch.compile`` and in CUDA graphs. Label values are checked
    eagerly on CPU; on other devices with ``torch._assert_async``; not under
    ``torch.compile`` tracing.

    Parameters
    ----------
    hidden : Tensor, shape (..., d)
        Floating inputs of the last layer.
    weight : Tensor, shape (V, d)
        Output projection, as in ``nn.Linear`` (same dtype as ``hidden``).
    target : Tensor, shape (...)
        Integer labels in ``[0, V)`` or ``ignore_index``; shape ``hidden.shape[:-1]``.
    bias : Tensor, shape (V,), optional
    ignore_index : int, default -100
    label_smoothing : float in [0, 1], default 0
    class_weights : Tensor, shape (V,), optional
        Finite, >= 0.
    z_loss : float >= 0, default 0
    softcap : float > 0, optional
    reduction : {"mean", "sum", "none"}
    chunk_size : int >= 1, optional
        Rows per chunk (one GEMM each); by default about 64 MiB of logits per chunk for
        float32 inputs, 128 MiB for bfloat16/float16 (at least 64 rows, at most 4096).
    return_lse : bool
        Also return the per-row log-sum-exp of the (softcapped) logits, float32
        (float64 for float64 inputs), shape of ``target``, not differentiable.
    group : torch.distributed ProcessGroup, optional
        Vocabulary parallel: ``weight`` (and ``bias``) are this rank's contiguous
        slice of the vocabulary rows, in rank order within ``group`` (rank 0 holds
        classes ``[0, V_0)``, rank 1 ``[V_0, V_0 + V_1)``, ...; slices may differ in
        size, e.g. V = 50257 over 4 ranks). ``hidden``, ``target`` (global class
        indices) and ``class_weights`` (shape (V,) for the whole vocabulary) are the
        same on every rank. The loss (and lse) equal the single-process loss on the
        whole weight, on every rank; each rank gets the gradient of its own slice.
        Per chunk of rows only per-row statistics cross the network: one
        ``all_gather`` of 3 numbers per row (4 with label smoothing), float32
        (float64 for float64 inputs), i.e. 12 or 16 bytes per row sent by each
        rank. Every rank must call with the same rows, options, ``chunk_size`` and
        ``requires_grad`` state, and run backward. ``None`` (default): one process.
    reduce_hidden_grad : bool, default True
        Only with ``group``: the gradient of ``hidden`` is the sum over ranks of
        each rank's ``g_k @ W_k``. True all-reduces it (sum, in ``hidden``'s dtype) in
        this function's backward, so every rank gets the full gradient. False leaves
        each rank its partial sum, for frameworks whose input region does that
        all-reduce itself (Megatron's ``copy_to_tensor_model_parallel_region``).

    Returns
    -------
    loss : Tensor
        Scalar, or shape of ``target`` for ``reduction="none"``; float32 for
        float16/bfloat16/float32 inputs, float64 for float64.
    lse : Tensor, only with ``return_lse=True``

    Notes
    -----
    Precision: float32 inputs match the materialised float32 computation to about
    1e-6 relative (different summation order; the benchmark measures <= 1e-6 on
    the gradients). bfloat16/float16 inputs: the logits ``h @ W.T`` and
    ``grad_hidden = g @ W`` run in the input dtype (float32 accumulation inside
    the kernel, output rounded once, as in the unfused code); softmax, loss and
    lse are float32; the gradient rows are rounded to the input dtype once, and
    ``g.T @ h`` runs in the input dtype on hardware where that is faster than
    float32 (CPUs with AVX512-BF16 or AMX for bfloat16; accelerators), rounded once
    per chunk of about 128 MiB and added to the float32 ``grad_weight``
    accumulator, otherwise as a float32 GEMM into it; rounded to the input dtype
    once at the end. Tolerances, tested against float32 math on the same bf16
    values: loss 1e-2 relative, every gradient within 2e-2 of its largest entry
    (the unfused bf16 code is of the same order: about 5e-3 in the benchmark).

    Memory: beyond the inputs and their gradients, one chunk of logits
    (``chunk_size x V``: about 64 MiB of float32, 128 MiB of bfloat16/float16) and
    about 1 MiB of float32 rows per thread; for low-precision inputs also the
    float32 ``V x d`` accumulator of ``grad_weight``.

    Examples
    --------
    >>> import torch, xent.torch
    >>> h = torch.randn(4, 8, requires_grad=True); W = torch.randn(10, 8, requires_grad=True)
    >>> y = torch.tensor([1, 2, -100, 9])
    >>> loss = xent.torch.linear_cross_entropy(h, W, y)
    >>> loss.backward()
    >>> ref = torch.nn.functional.cross_entropy(h @ W.T, y)
    >>> bool(torch.allclose(loss, ref))
    True

    References
    ----------
    .. [1] Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models", 2024.
    .. [2] Hsu et al., "Liger Kernel: Efficient Triton Kernels for LLM Training", 2024.
    .. [3] Chowdhery et al., "PaLM", 2022 (z-loss); Gemma Team, "Gemma 2", 2024 (softcap).
    """
    _check_float("hidden", hidden)
    _check_float("weight", weight)
    opts = check_options(ignore_index=ignore_index, label_smoothing=label_smoothing, z_loss=z_loss,
                         softcap=softcap, reduction=reduction)
    rows = check_chunk_size(chunk_size)
    check_flag("reduce_hidden_grad", reduce_hidden_grad)
    if hidden.dim() < 1:
        raise ValueError("`hidden` must have shape (..., d), got a 0-d tensor")
    if weight.dim() != 2 or weight.shape[1] != hidden.shape[-1]:
        raise ValueError(
            f"`weight` must have shape (V, {hidden.shape[-1]}) (d from hidden), got {tuple(weight.shape)}"
        )
    if weight.dtype != hidden.dtype:
        raise TypeError(f"`weight` must have the dtype of `hidden` ({hidden.dtype}), got {weight.dtype}")
    v = weight.shape[0]
    if bias is not None:
        _check_float("bias", bias)
        if tuple(bias.shape) != (v,):
            raise ValueError(f"`bias` must have shape ({v},) (V from weight), got {tuple(bias.shape)}")
        if bias.dtype != hidden.dtype:
            raise TypeError(f"`bias` must have the dtype of `hidden` ({hidden.dtype}), got {bias.dtype}")
    shard = None if group is None else vocab_shard(group, v, hidden.device, reduce_hidden=reduce_hidden_grad)
    n_classes = v if shard is None else shard.n_classes
    check_tensor("target", target)
    if tuple(target.shape) != tuple(hidden.shape[:-1]):
        raise ValueError(
            f"`target` must have shape {tuple(hidden.shape[:-1])} (hidden.shape[:-1]), got {tuple(target.shape)}"
        )
    target = check_target(target, num_classes=n_classes, ignore_index=opts.ignore_index)
    cdt = compute_dtype(hidden.dtype)
    cw = check_class_weights(class_weights, num_classes=n_classes,
                             like=torch.empty((), dtype=cdt, device=hidden.device))
    # Chunks of ~64 MiB of float32 logits (large enough for full-speed matmuls), or ~128 MiB
    # of low-precision ones (each one a pass over the float32 grad_weight accumulator).
    # Sharded: sized by the largest slice, so that every rank runs the same chunks (and collectives).
    width = v if shard is None else max(shard.sizes)
    rows = rows or default_rows(width, lo=64, target_bytes=(64 if cdt == hidden.dtype else 256) * 2**20)
    h2 = hidden.reshape(-1, hidden.shape[-1])
    t1 = target.reshape(-1).to(device=hidden.device)
    loss, lse = fused_linear_cross_entropy(h2, weight, bias, t1, cw, opts, rows, shard)
    if opts.reduction == "none":
        loss = loss.reshape(target.shape)
    lse = lse.reshape(target.shape)
    return (loss, lse) if return_lse else loss


@overload
def cross_entropy(
    input: Tensor,
    target: Tensor,
    /,
    *,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    class_weights: Tensor | None = None,
    z_loss: float = 0.0,
    softcap: float | None = None,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    return_lse: Literal[False] = False,
    group: Any = None,
) -> Tensor: ...


@overload
def cross_entropy(
    input: Tensor,
    target: Tensor,
    /,
    *,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    class_weights: Tensor | None = None,
    z_loss: float = 0.0,
    softcap: float | None = None,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    return_lse: Literal[True],
    group: Any = None,
) -> tuple[Tensor, Tensor]: ...


def cross_entropy(
    input: Tensor,
    target: Tensor,
    /,
    *,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    class_weights: Tensor | None = None,
    z_loss: float = 0.0,
    softcap: float | None = None,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    return_lse: bool = False,
    group: Any = None,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""Softmax cross-entropy on materialised logits, chunked over rows.

    Same formula, options and reductions as :func:`linear_cross_entropy`, with
    the class dimension at 1 like ``F.cross_entropy``: ``input`` is (C,), (N, C)
    or (N, C, d1, ...), and ``target`` is (), (N,) or (N, d1, ...). Without
    z-loss and softcap it equals ``F.cross_entropy(input, target,
    weight=class_weights, ...)``, except that a mean over zero total weight is 0
    (PyTorch: NaN). The gradient is computed in the forward pass one
    cache-sized block of rows at a time and scaled in backward, which on CPU is
    faster than ``F.cross_entropy`` + backward (see ``bench/torch_cross_entropy.py``). On CPU the
    blocks are spread over a few threads with dynamic scheduling, so another busy process slows it
    down no more than it slows ``F.cross_entropy``. A backward with ``create_graph=True``
    differentiates the materialised formula (double backward is exact).
    The loss (and lse) are float32 for float16/bfloat16/float32 inputs.

    With ``group`` (a torch.distributed ProcessGroup), ``input`` holds this rank's
    contiguous slice of the classes (dimension 1), in rank order, as for
    :func:`linear_cross_entropy`'s ``weight``; ``target`` holds global class
    indices and ``class_weights`` the whole (V,) vector, the same on every rank.
    One ``all_gather`` of 3 numbers per row (4 with label smoothing; 12 or 16
    bytes per row sent by each rank in float32) gives every rank the loss of the
    whole rows, and each rank the gradient of its own slice. Every rank must call
    with the same rows and options, and run backward. Megatron's
    ``vocab_parallel_cross_entropy`` does this job (three all-reduces, no class
    weights, z-loss or softcap).

    Examples
    --------
    >>> import torch, xent.torch
    >>> z = torch.randn(5, 7, requires_grad=True); y = torch.tensor([0, 6, 3, -100, 1])
    >>> loss = xent.torch.cross_entropy(z, y, label_smoothing=0.1)
    >>> ref = torch.nn.functional.cross_entropy(z, y, label_smoothing=0.1)
    >>> bool(torch.allclose(loss, ref))
    True
    """
    _check_float("input", input)
    opts = check_options(ignore_index=ignore_index, label_smoothing=label_smoothing, z_loss=z_loss,
                         softcap=softcap, reduction=reduction)
    rows = check_chunk_size(chunk_size)
    check_tensor("target", target)
    if input.dim() == 0:
        raise ValueError("`input` must have shape (C,), (N, C) or (N, C, d1, ...), got a 0-d tensor")
    expected = () if input.dim() == 1 else (input.shape[0], *input.shape[2:])
    if tuple(target.shape) != tuple(expected):
        raise ValueError(
            f"`target` must have shape {tuple(expected)} (input's shape without the class dimension 1), "
            f"got {tuple(target.shape)}"
        )
    width = input.shape[0] if input.dim() == 1 else input.shape[1]
    shard = None if group is None else vocab_shard(group, width, input.device)
    n_classes = width if shard is None else shard.n_classes
    target = check_target(target, num_classes=n_classes, ignore_index=opts.ignore_index)
    cdt = compute_dtype(input.dtype)
    cw = check_class_weights(class_weights, num_classes=n_classes,
                             like=torch.empty((), dtype=cdt, device=input.device))
    z = input.unsqueeze(0) if input.dim() == 1 else input.movedim(1, -1)
    z2 = z.reshape(math.prod(z.shape[:-1]), width)  # not -1: an empty vocabulary slice has width 0
    rows = rows or logits_block_rows(width)
    need_grad = torch.is_grad_enabled() and input.requires_grad
    t1 = target.reshape(-1).to(device=input.device)
    loss, lse = CrossEntropyFunction.apply(z2, t1, cw, None, opts, rows, need_grad, shard)  # type: ignore[no-untyped-call]
    if opts.reduction == "none":
        loss = loss.reshape(target.shape)
    lse = lse.reshape(target.shape)
    return (loss, lse) if return_lse else loss
