"""Why cross-entropy sums -log p instead of multiplying probabilities.

Run: python examples/likelihood_underflow.py [N]

The likelihood of N independent observations is the product of the
probabilities the model gave them. For a few thousand points that product is
smaller than the smallest float and underflows to exactly 0, so two models can
no longer be compared. The sum of -log p (the summed cross-entropy) stays an
ordinary number, exact to rounding, and exp(-sum) is the same likelihood.
"""

from __future__ import annotations

import math
import sys

import numpy as np

import xent


def main(n: int = 2000, *, seed: int = 0) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(float)
    # a decent model: probability of the true label between 0.3 and 0.9
    p_true = rng.uniform(0.3, 0.9, size=n)
    p = np.where(y == 1, p_true, 1 - p_true)

    product64 = float(np.prod(p_true))
    product32 = float(np.prod(p_true.astype(np.float32)))
    nll = float(xent.binary_cross_entropy(y, p, reduction="sum"))
    # reference: the exactly rounded sum of the logs
    reference = -math.fsum(math.log(v) for v in p_true)

    assert math.isfinite(nll) and math.isclose(nll, reference, rel_tol=1e-12)
    # exp(-746) is below the smallest subnormal float64 (4.9e-324): the product must be exactly 0
    if nll > 746.0:
        assert product64 == 0.0 and product32 == 0.0
    else:
        assert math.isclose(product64, math.exp(-nll), rel_tol=1e-9)
    log10_likelihood = -nll / math.log(10)
    print(f"{n} points, probability of the observed label between 0.3 and 0.9")
    print(f"product of probabilities (float64): {product64!r}   (float32: {product32!r})")
    print(f"summed cross-entropy -sum log p:    {nll:.6f} nats")
    print(f"so the likelihood is exp(-{nll:.3f}) = 10^{log10_likelihood:.3f} "
          f"(the smallest normal float64 is {sys.float_info.min:.3g})")
    per_point = xent.binary_cross_entropy(y[:3], p[:3], reduction="none")
    print("each point's error -log p, first three:", ", ".join(f"{v:.4f}" for v in per_point))
    return {"product64": product64, "product32": product32, "nll": nll, "reference": reference,
            "log10_likelihood": log10_likelihood, "p_true": p_true}


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
