"""Cross-entropy losses: binary, categorical, sparse categorical, focal and contrastive (SigLIP, CLIP)."""

from xent.losses.binary import binary_cross_entropy
from xent.losses.categorical import categorical_cross_entropy, sparse_categorical_cross_entropy
from xent.losses.contrastive import clip_loss, siglip_loss
from xent.losses.focal import binary_focal_cross_entropy, categorical_focal_cross_entropy

__all__ = [
    "binary_cross_entropy",
    "binary_focal_cross_entropy",
    "categorical_cross_entropy",
    "categorical_focal_cross_entropy",
    "clip_loss",
    "siglip_loss",
    "sparse_categorical_cross_entropy",
]
