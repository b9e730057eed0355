"""xent: cross-entropy done right.

The whole cross-entropy family, exact and numerically stable, on NumPy,
PyTorch and JAX arrays. See the README for the conventions table.
"""

from xent.primitives import log_sigmoid, log_softmax, logsumexp, sigmoid, softmax

__version__ = "0.1.0"

__all__ = [
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "sigmoid",
    "softmax",
]
