"""Vocabulary parallel: the classes are split across the ranks of a process group.

Rank ``k`` of the group holds the contiguous slice ``[lo_k, hi_k)`` of the
vocabulary, in rank order (``lo_0 = 0``, ``hi_k = lo_{k+1}``); slices may differ in
size (one may even be empty). Every rank holds the same rows, labels (global class
indices) and class weights (the whole (V,) vector). For each block of rows:

1. each rank computes, from its own columns only, four per-row statistics:
   the max ``m_k``, ``sum_c exp(z_c - m_k)``, ``z_y - m_k`` (0 unless it owns the
   label) and, with label smoothing, ``sum_c w_c (z_c - m_k)``;
2. one ``all_gather`` exchanges them (3 numbers per row without smoothing, 4 with
   it, in float32, float64 for float64 inputs: 12 or 16 bytes per row sent by each
   rank, ``world - 1`` times that received); no logit ever crosses the network;
3. every rank combines them into the global ``lse`` and the loss (identical on
   every rank) and turns its own columns into their gradient.

The gradient of a replicated input (``hidden`` of the fused loss) is the sum over
ranks of each rank's partial ``g_k @ W_k``: :meth:`VocabShard.reduce_hidden_grad`
all-reduces it in backward, unless the caller's framework does it itself.
Collectives used: ``all_gather_single`` (``all_gather_into_tensor`` before torch 2.13) and
``all_reduce``, both in gloo and NCCL.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from xent.torch._kernel import LossOptions, grad_, row_losses, shifted_stats_, softcap_

__all__ = ["VocabShard", "stats_width", "vocab_shard"]


def stats_width(opts: LossOptions) -> int:
    """Numbers per row each rank sends: max, sum of exp, target logit (+ smoothing sum)."""
    return 4 if opts.label_smoothing > 0.0 else 3


@dataclass(frozen=True, eq=False)
class VocabShard:
    """This rank's slice of the vocabulary and the group it is shared with."""

    group: Any
    rank: int
    sizes: tuple[int, ...]
    reduce_hidden: bool = True

    @property
    def n_classes(self) -> int:
        return sum(self.sizes)

    @property
    def lo(self) -> int:
        return sum(self.sizes[: self.rank])

    @property
    def hi(self) -> int:
        return self.lo + self.sizes[self.rank]

    def local(self, class_weights: torch.Tensor | None) -> torch.Tensor | None:
        """The class weights of this rank's columns."""
        return None if class_weights is None else class_weights[self.lo : self.hi]

    def label_owner(self, safe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(owner rank of each label, whether it is this rank, the label's column here or 0)."""
        bounds = torch.tensor(list(_cumsum(self.sizes))[1:], dtype=safe.dtype, device=safe.device)
        owner = torch.bucketize(safe, bounds, right=True)
        mine = owner == self.rank
        col = torch.where(mine, safe - self.lo, torch.zeros((), dtype=safe.dtype, device=safe.device))
        return owner, mine, col

    def local_stats_(
        self, buf: torch.Tensor, col: torch.Tensor, mine: torch.Tensor, opts: LossOptions,
        class_weights_local: torch.Tensor | None,
    ) -> torch.Tensor:
        """(R, stats_width) statistics of this rank's columns; ``buf`` becomes ``exp(z - m_k)``."""
        rows = buf.shape[0]
        if buf.shape[1] == 0:  # an empty slice: m = -inf, nothing else
            out = torch.zeros((rows, stats_width(opts)), dtype=buf.dtype, device=buf.device)
            out[:, 0] = -torch.inf
            return out
        m, s, z_y, smooth = shifted_stats_(buf, col, class_weights_local, opts.label_smoothing > 0.0)
        z_y = torch.where(mine, z_y, torch.zeros((), dtype=z_y.dtype, device=z_y.device))
        parts = [m, s, z_y] if smooth is None else [m, s, z_y, smooth]
        return torch.stack(parts, 1)

    def gather(self, stats: torch.Tensor) -> torch.Tensor:
        """(world, R, k): every rank's statistics (one ``all_gather``)."""
        world = len(self.sizes)
        out = torch.empty((world * stats.shape[0], stats.shape[1]), dtype=stats.dtype, device=stats.device)
        _all_gather(out, stats.contiguous(), self.group)
        return out.view(world, stats.shape[0], stats.shape[1])

    def combine(
        self, gathered: torch.Tensor, owner: torch.Tensor, shard_wsum: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(log_s, z_y, smooth, lse) shifted by the global row max ``M``, as :func:`row_losses` takes them.

        ``shard_wsum`` (world,): the class-weight sum of each rank's slice (needed with smoothing).
        """
        m_all = gathered[:, :, 0]
        big = m_all.amax(0)
        big = torch.where(torch.isfinite(big), big, torch.zeros((), dtype=big.dtype, device=big.device))
        d = m_all - big  # (world, R), <= 0; -inf for an empty slice
        s = (gathered[:, :, 1] * d.exp()).sum(0)
        log_s = s.log()
        rows = torch.arange(owner.shape[0], device=owner.device)
        z_y = gathered[owner, rows, 2] + d[owner, rows]
        smooth = None
        if shard_wsum is not None and gathered.shape[2] == 4:
            # sum_c w_c (z_c - M) = sum_k [sum_{c in k} w_c (z_c - m_k) + (m_k - M) sum_{c in k} w_c]
            shift = d * shard_wsum.unsqueeze(1)
            shift = torch.where(shard_wsum.unsqueeze(1) > 0, shift, torch.zeros((), dtype=d.dtype, device=d.device))
            smooth = (gathered[:, :, 3] + shift).sum(0)
        return log_s, z_y, smooth, big + log_s

    def shard_wsum(self, class_weights: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        """(world,) sum of the class weights in each rank's slice (the slice sizes without weights)."""
        if class_weights is None:
            return torch.tensor(self.sizes, dtype=like.dtype, device=like.device)
        cuts = list(_cumsum(self.sizes))
        return torch.stack([class_weights[a:b].sum() for a, b in itertools.pairwise(cuts)]).to(like.dtype)

    def rows_loss_(
        self,
        buf: torch.Tensor,
        safe: torch.Tensor,
        valid: torch.Tensor,
        opts: LossOptions,
        class_weights: torch.Tensor | None,
        sum_w: float | torch.Tensor,
        *,
        grad_scale: torch.Tensor | None = None,
        lse: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """:func:`xent.torch._kernel.rows_loss_` for this rank's columns of the logits (one ``all_gather``).

        ``class_weights`` and ``sum_w`` are those of the whole vocabulary; the loss and
        lse are those of the whole row, identical on every rank.
        """
        owner, mine, col = self.label_owner(safe)
        tanh = softcap_(buf, opts, grad_scale is not None)
        cw_local = self.local(class_weights)
        w_y = None if class_weights is None else class_weights.gather(0, safe)
        loss = None
        if lse is None:
            stats = self.local_stats_(buf, col, mine, opts, cw_local)
            log_s, z_y, smooth, lse = self.combine(self.gather(stats), owner,
                                                   self.shard_wsum(class_weights, buf) if stats.shape[1] == 4 else None)
            loss = row_losses(log_s, z_y, smooth, lse, w_y, valid, opts, self.n_classes, sum_w)
            exp_to_p: torch.Tensor | None = (stats[:, 0] - lse).exp()  # p = exp(z - m_k) * exp(m_k - lse)
        else:
            buf.sub_(lse.unsqueeze(1)).exp_()
            exp_to_p = None
        if grad_scale is not None and buf.shape[1] > 0:
            grad_(buf, exp_to_p, col, mine, w_y, cw_local, opts, self.n_classes, sum_w,
                  valid.to(buf.dtype) * grad_scale, lse, tanh)
        return loss, lse

    def reduce_hidden_grad(self, grad: torch.Tensor | None) -> torch.Tensor | None:
        """Sum the ranks' partial gradients of a replicated input (in place), unless the caller does it."""
        if grad is not None and self.reduce_hidden:
            dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=self.group)
        return grad


def _all_gather(out: torch.Tensor, inp: torch.Tensor, group: Any) -> None:
    """Every rank's ``inp`` stacked along dimension 0 of ``out`` (torch >= 2.13 names it all_gather_single)."""
    fn = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    fn(out, inp, group=group)


def _cumsum(sizes: Iterable[int]) -> Iterator[int]:
    total = 0
    yield 0
    for s in sizes:
        total += s
        yield total


def vocab_shard(group: Any, local_size: int, device: torch.device, *, reduce_hidden: bool = True) -> VocabShard:
    """Every rank's slice size (one small ``all_gather``), as a :class:`VocabShard` for this rank."""
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("`group` was given but torch.distributed is not initialised (call init_process_group first)")
    world = dist.get_world_size(group)
    rank = dist.get_rank(group)
    mine = torch.tensor([local_size], dtype=torch.int64, device=device)
    sizes = torch.empty(world, dtype=torch.int64, device=device)
    _all_gather(sizes, mine, group)
    return VocabShard(group=group, rank=rank, sizes=tuple(int(s) for s in sizes.tolist()), reduce_hidden=reduce_hidden)
