"""The row kernel shared by the fused and the materialised losses.

One function turns a block of logits, in place, into the per-row loss, the
per-row log-sum-exp and (optionally) the gradient of the loss with respect to
the logits. Everything is written with in-place tensor ops and no host
synchronisation, so it runs unchanged on CPU, CUDA and under ``torch.compile``.

Per row with label ``y``, class weights ``w`` (all 1 by default), smoothing ``e``
over ``C`` classes, z-loss coefficient ``zl`` and softcap ``s``:

    z'  = s * tanh(z / s)                     (only with a softcap)
    q   = (1 - e) * onehot(y) + e / C
    l   = -sum_c w_c q_c log softmax(z')_c + zl * w_y * logsumexp(z')^2
    dl/dz' = p * (W_q + 2 zl w_y lse) - w * q,   W_q = sum_c w_c q_c
    dl/dz  = dl/dz' * (1 - tanh(z / s)^2)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "LossOptions",
    "grad_",
    "kept_rows",
    "reduce_rows",
    "reduction_scale",
    "row_losses",
    "row_weights",
    "rows_loss_",
    "shifted_stats_",
    "softcap_",
]


@dataclass(frozen=True)
class LossOptions:
    """Validated scalar options (Python numbers, so tracing treats them as constants)."""

    ignore_index: int | None  # None: every row counts
    label_smoothing: float
    z_loss: float
    softcap: float | None
    reduction: str


def kept_rows(target: torch.Tensor, ignore_index: int | None) -> torch.Tensor:
    """The rows whose label is not ``ignore_index`` (all rows when it is None)."""
    if ignore_index is None:
        return torch.ones_like(target, dtype=torch.bool)
    return target != ignore_index


def row_weights(
    target: torch.Tensor, class_weights: torch.Tensor | None, ignore_index: int | None, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Safe labels (ignored -> 0), the valid mask and c_i = w[y_i] * valid_i."""
    valid = kept_rows(target, ignore_index)
    safe = torch.where(valid, target, torch.zeros((), dtype=target.dtype, device=target.device))
    if class_weights is None:
        c = valid.to(dtype)
    else:
        c = class_weights.to(dtype).gather(0, safe) * valid
    return safe, valid, c


def reduction_scale(
    target: torch.Tensor,
    class_weights: torch.Tensor | None,
    opts: LossOptions,
    dtype: torch.dtype,
    sample_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inv, scale): 1 / sum_i s_i c_i in the accumulation dtype, and the gradient's row scale in ``dtype``.

    ``sample_weights`` (N,) are the core API's per-example weights ``s_i`` (1 when None).
    A mean over zero total weight is defined as 0 with zero gradient (PyTorch gives NaN),
    chosen with ``where`` on device: no host synchronisation.
    """
    device = target.device
    acc = torch.float32 if device.type == "mps" else torch.float64  # float64 sums (MPS has none)
    _, _, c = row_weights(target, class_weights, opts.ignore_index, dtype)
    if sample_weights is not None:
        c = c * sample_weights
    denom = c.to(acc).sum()
    inv = torch.where(denom > 0, 1.0 / torch.where(denom > 0, denom, 1.0), torch.zeros((), dtype=acc, device=device))
    scale = inv.to(dtype) if opts.reduction == "mean" else torch.ones((), dtype=dtype, device=device)
    return inv, scale


def reduce_rows(losses: torch.Tensor, inv: torch.Tensor, opts: LossOptions) -> torch.Tensor:
    """Per-row losses -> the requested reduction (sums accumulated in ``inv``'s dtype)."""
    if opts.reduction == "none":
        return losses
    total = losses.to(inv.dtype).sum()
    return (total * inv if opts.reduction == "mean" else total).to(losses.dtype)


def softcap_(buf: torch.Tensor, opts: LossOptions, keep_tanh: bool) -> torch.Tensor | None:
    """buf <- s * tanh(buf / s) in place; returns tanh(z / s) when the gradient will need it."""
    if opts.softcap is None:
        return None
    if not keep_tanh:
        buf.div_(opts.softcap).tanh_().mul_(opts.softcap)
        return None
    # d(s tanh(z/s))/dz = 1 - tanh^2 is needed after buf turns into p. Out of place: inductor
    # (torch 2.13) miscompiled buf.tanh_() then buf.clone() on a buffer reused across chunks.
    tanh = torch.tanh(buf / opts.softcap)
    torch.mul(tanh, opts.softcap, out=buf)
    return tanh


def shifted_stats_(
    buf: torch.Tensor, y: torch.Tensor, class_weights: torch.Tensor | None, smoothing: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Per row: max ``m``, ``sum exp(z - m)``, ``z_y - m`` and ``sum_c w_c (z_c - m)`` (None unless smoothing).

    ``buf`` (R, C) ends holding ``exp(z - m)``. Shifting by the row max keeps exp from
    overflowing, and the shifted values give ``log p`` without the cancellation of
    ``z_y - lse`` for large logits.
    """
    m = buf.amax(1, keepdim=True)
    buf.sub_(m)
    z_y = buf.gather(1, y.unsqueeze(1)).squeeze(1)
    smooth = None
    if smoothing:
        smooth = buf.sum(1) if class_weights is None else buf @ class_weights
    buf.exp_()
    return m.squeeze(1), buf.sum(1), z_y, smooth


def row_losses(
    log_s: torch.Tensor,
    z_y: torch.Tensor,
    smooth: torch.Tensor | None,
    lse: torch.Tensor,
    w_y: torch.Tensor | None,
    valid: torch.Tensor,
    opts: LossOptions,
    n_classes: int,
    sum_w: float | torch.Tensor,
) -> torch.Tensor:
    """Per-row loss from statistics shifted by one per-row constant ``M``.

    ``log_s = lse - M``, ``z_y`` is ``z_y - M`` and ``smooth`` is ``sum_c w_c (z_c - M)``;
    ``n_classes`` and ``sum_w`` are those of the whole vocabulary. 0 on ignored rows.
    """
    e = opts.label_smoothing
    nll = log_s - z_y  # -log p_y
    if w_y is not None:
        nll = nll * w_y
    loss = (1.0 - e) * nll if e < 1.0 else torch.zeros_like(nll)
    if smooth is not None:
        # sum_c w_c log p_c = sum_c w_c (z_c - M) - log(s) * sum_c w_c
        loss = loss - (e / n_classes) * (smooth - log_s * sum_w)
    if opts.z_loss > 0.0:
        zl = opts.z_loss * lse.square()
        loss = loss + (zl if w_y is None else zl * w_y)
    return torch.where(valid, loss, torch.zeros((), dtype=loss.dtype, device=loss.device))


def grad_(
    buf: torch.Tensor,
    exp_to_p: torch.Tensor | None,
    y: torch.Tensor,
    owns_label: torch.Tensor | None,
    w_y: torch.Tensor | None,
    class_weights: torch.Tensor | None,
    opts: LossOptions,
    n_classes: int,
    sum_w: float | torch.Tensor,
    row_scale: torch.Tensor,
    lse: torch.Tensor,
    tanh: torch.Tensor | None,
) -> None:
    """Turn ``buf`` = ``exp(z - m)`` into ``row_scale * dl/dz`` in place, ``p = buf * exp_to_p``.

    ``exp_to_p`` (``exp(m - lse)``, per row) None means ``buf`` already holds ``p``.
    ``class_weights`` are those of ``buf``'s columns, ``n_classes`` and ``sum_w`` those of
    the whole vocabulary. The one-hot term goes to column ``y`` of the rows where
    ``owns_label`` is true (None: all rows).
    """
    e = opts.label_smoothing
    label_weight = torch.ones((), dtype=buf.dtype, device=buf.device) if w_y is None else w_y
    target_mass = (1.0 - e) * label_weight + (e / n_classes) * sum_w  # W = sum_c w_c q_c
    if opts.z_loss > 0.0:
        target_mass = target_mass + (2.0 * opts.z_loss) * label_weight * lse
    coef = target_mass * row_scale if exp_to_p is None else target_mass * row_scale * exp_to_p
    buf.mul_(coef.unsqueeze(1))  # p * (sum_c w_c q_c + z-loss term)
    if e > 0.0:
        # - e/C w_c: the smoothing mass every class gets
        if class_weights is None:
            buf.sub_((e / n_classes) * row_scale.unsqueeze(1))
        else:
            buf.addr_(row_scale, class_weights, alpha=-e / n_classes)  # in-place rank-1: no (R, C) temporary
    if e < 1.0:
        # - (1 - e) w_y at the label: the one-hot's share
        at_label = -(1.0 - e) * label_weight * row_scale
        if owns_label is not None:
            at_label = torch.where(owns_label, at_label, torch.zeros((), dtype=at_label.dtype, device=at_label.device))
        buf.scatter_add_(1, y.unsqueeze(1), at_label.unsqueeze(1))
    if tanh is not None:
        buf.mul_(tanh.square_().neg_().add_(1.0))


def rows_loss_(
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
    """Per-row loss and lse of the logits ``buf`` (R, C), overwriting ``buf``.

    With ``grad_scale`` (a scalar or an (R,) tensor), ``buf`` ends holding
    ``grad_scale[:, None] * dl/dz`` (zero on ignored rows). With ``lse`` given
    (the backward recomputation) the loss is not computed and None is returned.
    """
    n_classes = buf.shape[1]
    tanh = softcap_(buf, opts, grad_scale is not None)
    w_y = None if class_weights is None else class_weights.gather(0, safe)
    loss = None
    if lse is None:
        m, s, z_y, smooth = shifted_stats_(buf, safe, class_weights, opts.label_smoothing > 0.0)
        log_s = s.log()
        lse = m + log_s
        loss = row_losses(log_s, z_y, smooth, lse, w_y, valid, opts, n_classes, sum_w)
        exp_to_p: torch.Tensor | None = s.reciprocal()  # p = exp(z - m) / s
    else:
        buf.sub_(lse.unsqueeze(1)).exp_()  # buf = softmax(z') from the saved lse
        exp_to_p = None
    if grad_scale is not None:
        grad_(buf, exp_to_p, safe, None, w_y, class_weights, opts, n_classes, sum_w,
              valid.to(buf.dtype) * grad_scale, lse, tanh)
    return loss, lse
