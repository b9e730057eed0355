"""Cross-entropy losses: binary, categorical, sparse categorical and focal."""

from xent.losses.binary import binary_cross_entropy
from xent.losses.categorical import categorical_cross_entropy, sparse_categorical_cross_entropy
from xent.losses.focal import binary_focal_cross_entropy, categorical_focal_cross_entropy

__all__ = [
    "binary_cross_entropy",
    "binary_focal_cross_entropy",
    "categorical_cross_entropy",
    "categorical_focal_cross_entropy",
    "sparse_categorical_cross_entropy",
]
