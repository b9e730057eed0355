"""The calibration bins of `xent score` at their edges (0, k/n, 1), against scikit-learn's.

xent: bin k = [k/n, (k+1)/n), p = 1 in the last bin. scikit-learn's calibration_curve
(strategy="uniform"): ((k-1)/n, k/n], p = 0 in the first bin. The README's `xent score`
conventions state both; this test shows them on the edge values themselves.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.calibration import calibration_curve


@pytest.mark.parametrize("n", [10, 15])
def test_edge_values_xent_left_closed_sklearn_right_closed(n, tmp_path, capsys):
    from xent.cli import main

    v = np.array([0.0] + [k / n for k in range(1, n)] + [1.0])  # 0, every inner edge k/n, 1
    y = np.arange(v.size) % 2
    path = tmp_path / "edges.csv"
    path.write_text("y,p\n" + "".join(f"{a},{b!r}\n" for a, b in zip(y, v.tolist())))
    assert main(["score", str(path), "--label", "y", "--prob", "p", "--bins", str(n), "--json"]) == 0
    bins = json.loads(capsys.readouterr().out)["metrics"]["reliability"]["bins"]
    assert [b["low"] for b in bins] == [k / n for k in range(n)]

    # xent: k/n starts bin k (k = 0 .. n-1); p = 1 joins k = (n-1)/n in the last bin
    assert [b["rows"] for b in bins] == [1] * (n - 1) + [2]
    xent_means = [b["mean_predicted"] for b in bins]
    assert xent_means == pytest.approx([k / n for k in range(n - 1)] + [((n - 1) / n + 1) / 2], rel=1e-15)

    # scikit-learn: k/n ends bin k - 1; p = 0 joins 1/n in the first bin, p = 1 is alone in the last
    _, sk_means = calibration_curve(y, v, n_bins=n, strategy="uniform")
    assert sk_means == pytest.approx([(0 + 1 / n) / 2] + [k / n for k in range(2, n)] + [1.0], rel=1e-15)
