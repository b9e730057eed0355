"""xent: cross-entropy done right.

The whole cross-entropy family, exact and numerically stable, on NumPy,
PyTorch and JAX arrays. See the README for the conventions table.
"""

from xent.engine import get_num_threads, set_num_threads
from xent.information import cross_entropy, entropy, js_divergence, kl_divergence
from xent.losses import (
    binary_cross_entropy,
    binary_focal_cross_entropy,
    categorical_cross_entropy,
    categorical_focal_cross_entropy,
    clip_loss,
    siglip_loss,
    sparse_categorical_cross_entropy,
)
from xent.primitives import log_sigmoid, log_softmax, logsumexp, sigmoid, softmax

__version__ = "0.1.0"

__all__ = [
    "binary_cross_entropy",
    "binary_focal_cross_entropy",
    "categorical_cross_entropy",
    "categorical_focal_cross_entropy",
    "clip_loss",
    "cross_entropy",
    "entropy",
    "get_num_threads",
    "js_divergence",
    "kl_divergence",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "set_num_threads",
    "siglip_loss",
    "sigmoid",
    "softmax",
    "sparse_categorical_cross_entropy",
]
