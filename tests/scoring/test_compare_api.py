"""`xent.scoring.compare`: model A vs model B against scikit-learn / NumPy on the same data, --vs and
--against (any split of either file set) agreeing, and every located error."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss

from xent.scoring import ScoreInputError, ScoreSpec, compare
from xent.scoring._paired import verdict as _verdict

N = 2000


def _data(seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(-0.5, 1.5, N)
    p = 1.0 / (1.0 + np.exp(-z))
    y = (rng.random(N) < p).astype(np.int8)
    za = 1.4 * z + rng.normal(0.0, 0.8, N)  # A: over-confident and noisy
    zb = z + rng.normal(0.0, 0.3, N)  # B: close to the truth
    return {"y": y, "pa": 1.0 / (1.0 + np.exp(-za)), "pb": 1.0 / (1.0 + np.exp(-zb)), "za": za, "zb": zb,
            "w": rng.uniform(0.5, 2.0, N)}


def _parquet(path, cols, row_groups):
    table = pa.table(cols)
    with pq.ParquetWriter(str(path), table.schema) as w:
        start = 0
        for n in row_groups:
            w.write_table(table.slice(start, n), row_group_size=n)
            start += n
    return str(path)


def _cut(cols, start, stop, names):
    return {k: cols[k][start:stop] for k in names}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("compare")
    cols = _data()
    names = ("y", "pa", "pb", "za", "zb", "w")
    a = [_parquet(d / "a1.parquet", _cut(cols, 0, 1300, names), [1, 700, 599]),
         _parquet(d / "a2.parquet", _cut(cols, 1300, N, names), [700])]
    b2 = d / "b2.csv"
    pcsv.write_csv(pa.table(_cut(cols, 333, N, ("y", "pb"))), str(b2))
    b = [_parquet(d / "b1.parquet", _cut(cols, 0, 333, ("y", "pb")), [100, 233]), str(b2)]
    return cols, a, b, d


def _ece(y, p, w, n_bins=15):
    b = np.minimum((p * n_bins).astype(int), n_bins - 1)
    W = np.bincount(b, w, n_bins)
    gap = np.abs(np.bincount(b, w * p, n_bins) - np.bincount(b, w * y, n_bins))
    return float(gap.sum() / W.sum())


def _sklearn(y, p, w):
    prior = np.average(y, weights=w)
    h = -(prior * math.log(prior) + (1 - prior) * math.log(1 - prior))
    ll = log_loss(y, p, sample_weight=w)
    return {"log_loss": ll, "normalized_entropy": ll / h, "brier": brier_score_loss(y, p, sample_weight=w),
            "accuracy": accuracy_score(y, p >= 0.5, sample_weight=w), "ece": _ece(y, p, w)}


def test_vs_matches_sklearn_for_a_b_and_delta(files):
    cols, a, _, _ = files
    r = compare(a, ScoreSpec(label="y", pred="pa", weight="w"), vs="pb")
    want_a = _sklearn(cols["y"], cols["pa"], cols["w"])
    want_b = _sklearn(cols["y"], cols["pb"], cols["w"])
    d = r.to_dict()
    assert d["a"]["rows"] == d["b"]["rows"] == N
    for k in want_a:
        assert d["a"][k] == pytest.approx(want_a[k], rel=1e-12, abs=1e-15), k
        assert d["b"][k] == pytest.approx(want_b[k], rel=1e-12, abs=1e-15), k
        assert d["delta"][k] == pytest.approx(want_b[k] - want_a[k], rel=1e-9, abs=1e-14), k
    assert d["models"] == {"a": {"pred": ["pa"], "files": a}, "b": {"pred": ["pb"], "files": a}}
    assert d["level"] == 0.95 and d["positive_class"] == "1"
    # the same through logits
    rl = compare(a, ScoreSpec(label="y", pred="za", from_logits=True), vs="zb")
    want = _sklearn(cols["y"], 1 / (1 + np.exp(-cols["zb"])), np.ones(N))["log_loss"] - \
        _sklearn(cols["y"], 1 / (1 + np.exp(-cols["za"])), np.ones(N))["log_loss"]
    assert rl.delta["log_loss"] == pytest.approx(want, rel=1e-9)


def test_against_any_split_equals_vs(files):
    _, a, b, _ = files
    spec = ScoreSpec(label="y", pred="pa", weight="w")
    vs = compare(a, spec, vs="pb").to_dict()
    for batch_rows in (None, 97):  # batches cut across both file sets' boundaries
        ag = compare(a, spec, vs="pb", against=b, batch_rows=batch_rows, threads=1).to_dict()
        for key in ("a", "b", "delta", "delta_ci"):
            assert _close(ag[key], vs[key]), key
        assert ag["models"]["b"] == {"pred": ["pb"], "files": b}
    # B's columns named as A's (the usual case): --vs defaults to A's names
    renamed = files[3] / "b_renamed.parquet"
    cols = files[0]
    _parquet(renamed, {"y": cols["y"], "pa": cols["pb"]}, [N])
    same = compare(a, spec, against=[str(renamed)]).to_dict()
    assert _close(same["delta"], vs["delta"])


def _close(x, y):
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(_close(x[k], y[k]) for k in x)
    if isinstance(x, list):
        return len(x) == len(y) and all(_close(u, v) for u, v in zip(x, y))
    if isinstance(x, float):
        return math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-15)
    return x == y


def test_multiclass_string_labels_against_sklearn(tmp_path):
    rng = np.random.default_rng(5)
    n, names = 900, ["ant", "bee", "cat"]
    za, zb = rng.normal(0, 1.5, (n, 3)), rng.normal(0, 1.5, (n, 3))
    Pa = np.exp(za) / np.exp(za).sum(1, keepdims=True)
    Pb = np.exp(zb) / np.exp(zb).sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in Pb])
    cols = {"y": np.array(names)[y], **{f"a_{c}": Pa[:, j] for j, c in enumerate(names)},
            **{f"b_{c}": Pb[:, j] for j, c in enumerate(names)}}
    f = _parquet(tmp_path / "m.parquet", cols, [400, 500])
    spec = ScoreSpec(label="y", pred=[f"a_{c}" for c in names], classes=names)
    r = compare(f, spec, vs=[f"b_{c}" for c in names])
    la, lb = log_loss(y, Pa, labels=[0, 1, 2]), log_loss(y, Pb, labels=[0, 1, 2])
    assert r.a.result.log_loss == pytest.approx(la, rel=1e-12)
    assert r.delta["log_loss"] == pytest.approx(lb - la, rel=1e-10)
    acc = np.mean(Pb.argmax(1) == y) - np.mean(Pa.argmax(1) == y)
    assert r.delta["accuracy"] == pytest.approx(acc, abs=1e-15)
    assert r.to_dict()["positive_class"] is None


def test_verdict_direction():
    assert _verdict(-0.1, [-0.2, -0.05], -1) == "better"  # lower log loss
    assert _verdict(0.1, [0.05, 0.2], -1) == "worse"
    assert _verdict(0.1, [0.05, 0.2], +1) == "better"  # higher AUC
    assert _verdict(-0.1, [-0.2, -0.05], +1) == "worse"
    assert _verdict(0.01, [-0.01, 0.03], +1) == "not distinguishable"
    assert _verdict(0.0, [0.0, 0.0], -1) == "not distinguishable"
    assert _verdict(0.1, None, -1) is None


def test_bad_arguments(files):
    _, a, b, _ = files
    spec = ScoreSpec(label="y", pred="pa")
    for level in (0, 1, 1.5, -0.1, True, "0.9"):
        with pytest.raises(ValueError, match=r"`level` must be a number in \(0, 1\)"):
            compare(a, spec, vs="pb", level=level)
    with pytest.raises(ValueError, match="`vs` names the same column"):
        compare(a, spec, vs="pa")
    with pytest.raises(ValueError, match="`vs` must name model B"):
        compare(a, spec)
    with pytest.raises(ValueError, match="as many columns"):
        compare(a, spec, vs=["pb", "pa"])
    with pytest.raises(ValueError, match="`on_invalid` must be 'error'"):
        compare(a, spec.with_(on_invalid="skip"), vs="pb")
    with pytest.raises(ValueError, match="`against` names model A's own files"):
        compare(a, spec, against=a)


def _error(*args, **kw) -> ScoreInputError:
    with pytest.raises(ScoreInputError) as info:
        compare(*args, **kw)
    return info.value


def test_located_errors(files):
    cols, a, b, d = files
    spec = ScoreSpec(label="y", pred="pa", weight="w")
    # a label that differs: both files and rows named, A's file and row in the location
    flipped = dict(_cut(cols, 333, N, ("y", "pb")))
    flipped["y"] = flipped["y"].copy()
    flipped["y"][1000] = 1 - flipped["y"][1000]
    bad = _parquet(d / "flipped.parquet", flipped, [N - 333])
    e = _error(a, spec, vs="pb", against=[b[0], bad], batch_rows=256)
    assert (e.source, e.row, e.column) == (a[1], 1333 - 1300, "y"), str(e)
    assert f"in {bad} row 1000 (--against)" in str(e), str(e)
    # B shorter: A's first row without a partner; B longer: B's
    e = _error(a, spec, vs="pb", against=[b[0]])
    assert (e.source, e.row) == (a[0], 333) and "--against ends after 333 rows" in str(e), str(e)
    e = _error(a[:1], spec, vs="pb", against=b)
    assert (e.source, e.row) == (b[1], 1300 - 333) and "the input ends after 1,300 rows" in str(e), str(e)
    # an invalid prediction of model B: B's file, row and column
    broken = dict(_cut(cols, 333, N, ("y", "pb")))
    broken["pb"] = broken["pb"].copy()
    broken["pb"][5] = 1.5
    e = _error(a, spec, against=[b[0], _parquet(d / "broken.parquet", broken, [N - 333])], vs="pb")
    assert (e.source, e.row, e.column) == (str(d / "broken.parquet"), 5, "pb"), str(e)
    e = _error(a, spec, vs="nope")
    assert (e.source, e.column) == (a[0], "nope") and "column not found" in str(e)


def test_paired_interval_against_numpy(files):
    """The interval of B - A, recomputed here: each row's bucket from its (file name, row number) in model A's
    files, one multinomial draw of bucket counts per replicate for both models, percentiles of the difference."""
    from xent.metrics import bootstrap_counts, row_buckets

    cols, a, b, _ = files
    spec = ScoreSpec(label="y", pred="pa", weight="w")
    r = compare(a, spec, vs="pb", against=b, level=0.9)  # B's rows in other files: A's identity pairs them
    assert r.interval["buckets"] == 64 and r.interval["replicates"] == 1000 and r.interval["seed"] == 0
    bucket = np.concatenate([row_buckets(a[0], np.arange(1300), 64), row_buckets(a[1], np.arange(N - 1300), 64)])
    y, w = cols["y"], cols["w"]

    def loss(p):
        pc = np.clip(p, 2.2e-16, 1 - 2.2e-16)
        return -np.where(y == 1, np.log(pc), np.log1p(-pc))

    C = bootstrap_counts(64, 1000, 0).astype(float)
    W = C @ np.bincount(bucket, w, 64)
    la = C @ np.bincount(bucket, w * loss(cols["pa"]), 64) / W
    lb = C @ np.bincount(bucket, w * loss(cols["pb"]), 64) / W
    want = np.quantile(lb - la, [0.05, 0.95])
    np.testing.assert_allclose(r.delta_ci["log_loss"], want, rtol=1e-9)
    assert r.delta_ci["log_loss"][1] < 0 and r.verdict["log_loss"] == "better"  # B is the better model here
    assert r.verdict["ece"] == "better" and r.verdict["accuracy"] == "not distinguishable"
    # unpaired intervals would be wider: the pairing removes the rows' shared difficulty
    own = r.a.ci["log_loss"][1] - r.a.ci["log_loss"][0]
    assert r.delta_ci["log_loss"][1] - r.delta_ci["log_loss"][0] < own


def test_identical_models_are_not_distinguishable(files):
    cols, _, _, d = files
    f = _parquet(d / "twins.parquet", {"y": cols["y"], "pa": cols["pa"], "pa2": cols["pa"]}, [N])
    r = compare(f, ScoreSpec(label="y", pred="pa"), vs="pa2")
    for k, v in r.delta.items():
        assert v == 0.0, k
        assert r.delta_ci[k] == [0.0, 0.0] if k in r.delta_ci else True, k
    assert {v for v in r.verdict.values() if v is not None} == {"not distinguishable"}


def test_segments_against_pandas_groupby(tmp_path):
    import pandas as pd

    cols = _data(seed=11)
    rng = np.random.default_rng(12)
    seg = rng.choice(np.array(["north", "south", "east"], dtype=object), N, p=[0.5, 0.3, 0.2])
    seg[rng.random(N) < 0.05] = None
    table = {**{k: cols[k] for k in ("y", "pa", "pb", "w")}, "region": pa.array(seg.tolist(), pa.string())}
    f = _parquet(tmp_path / "seg.parquet", table, [999, 1001])
    r = compare(f, ScoreSpec(label="y", pred="pa", weight="w", by=("region",)), vs="pb")
    segs = r.to_dict()["segments"]["region"]
    df = pd.DataFrame({"y": cols["y"], "pa": cols["pa"], "pb": cols["pb"], "w": cols["w"], "region": seg})
    groups = df.groupby(df["region"].fillna("<NULL>"))
    want = {k: (g["w"].sum(), log_loss(g["y"], g["pb"], sample_weight=g["w"], labels=[0, 1])
                - log_loss(g["y"], g["pa"], sample_weight=g["w"], labels=[0, 1]), len(g)) for k, g in groups}
    order = [None if k == "<NULL>" else k for k in sorted(want, key=lambda k: -want[k][0])]
    assert [s["value"] for s in segs] == order and None in order
    for s in segs:
        weight, delta, rows = want["<NULL>" if s["value"] is None else s["value"]]
        assert s["a"]["rows"] == s["b"]["rows"] == rows
        assert s["a"]["weight"] == pytest.approx(weight, rel=1e-12)
        assert s["delta"]["log_loss"] == pytest.approx(delta, rel=1e-9)
        lo, hi = s["delta_ci"]["log_loss"]
        assert lo <= s["delta"]["log_loss"] <= hi
        assert s["verdict"]["log_loss"] in ("better", "not distinguishable")
    text = r.render(top=2)
    assert "by region (4 segments, largest weight first; the 2 largest shown (--top N);" in text
    assert len(text.split("by region")[1].splitlines()) == 5  # header, rule, 2 segments
