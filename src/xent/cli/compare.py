"""``xent compare``: model A against model B on the same rows, with paired intervals and a verdict per metric."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from xent.cli import CLIError, require
from xent.cli._output import write_report
from xent.cli.score import _classes, _eps, _level, _positive, _with_hint, _worded

EXAMPLES = """\
examples:
  xent compare examples/data/ctr_sample.parquet --label clicked --prob p_click --vs p_click_v2
  xent compare preds/ --label y --logit score_a --vs score_b --weight w --json > delta.json
  xent compare old/*.parquet --label y --prob p --against new/*.parquet --plot compare.png
  xent compare val.csv --label species --prob a_setosa a_versicolor a_virginica \\
      --vs b_setosa b_versicolor b_virginica --classes setosa,versicolor,virginica
  xent compare big/ --label y --prob p --vs p2 --engine dask --workers 4
  xent compare logs/ --label y --prob p --vs p2 --by country --by device --ci 0.99

Model A's predictions are --prob (or --logit) columns; model B's are the --vs
columns of the same files (the same kind: probabilities or logits), or, with
--against FILES2, the same columns (or --vs) of a second file set that holds the
same rows in the same order. Its label column is checked equal to the input's row
by row; the weight comes from the input. Every metric is computed for A and for B
on the same rows; B - A gets a paired interval at --ci (the same bootstrap
replicates for both models) and a verdict: better or worse when the interval
excludes 0, else not distinguishable. Lower is better for log loss, NE, Brier and
ECE; higher for accuracy, ROC AUC and average precision.
Rows are numbered from 0 (the first data row) in error messages.
Exit status: 0 ok, 2 bad input or usage (one line on stderr).
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare two models on the same rows: every metric for A and B, B - A with paired intervals",
        description="Stream prediction files and score two models on the same rows: log loss, NE, Brier, "
                    "accuracy, ECE, ROC AUC, average precision and the calibration ratio for model A and model B, "
                    "the difference B - A with a paired interval, and a verdict per metric, overall and per "
                    "segment (--by). Memory stays constant whatever the file size.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files, directories or glob patterns")
    cols = p.add_argument_group("columns")
    cols.add_argument("--label", default="label", metavar="COL", help="label column (default: label)")
    pred = cols.add_mutually_exclusive_group()
    pred.add_argument("--prob", nargs="+", metavar="COL",
                      help="model A's probability column(s), as for `xent score` (default: prob)")
    pred.add_argument("--logit", nargs="+", metavar="COL", help="model A's logit column(s), instead of --prob")
    cols.add_argument("--vs", nargs="+", metavar="COL",
                      help="model B's column(s), probabilities or logits as A's (default with --against: A's names)")
    cols.add_argument("--against", nargs="+", metavar="PATH",
                      help="model B's files: the same rows in the same order (label checked), B's columns")
    cols.add_argument("--weight", metavar="COL", help="optional per-row weight column (of the input files)")
    cols.add_argument("--classes", metavar="A,B,...", help="class list, comma-separated (labels are matched to it)")
    seg = p.add_argument_group("segments and intervals")
    seg.add_argument("--by", action="append", metavar="COL", default=[],
                     help="compare per value of this string or integer column too (repeatable; NULL is a segment "
                          "of its own; with --against, a column of the input files)")
    seg.add_argument("--top", type=_positive, default=20, metavar="N",
                     help="segments shown per --by column, largest weight first (default: 20; the JSON has all)")
    seg.add_argument("--max-segments", type=_positive, default=100_000, metavar="N",
                     help="stop with an error above N distinct values of a --by column (default: 100000)")
    seg.add_argument("--ci", type=_level, default=0.95, metavar="LEVEL",
                     help="level of the paired intervals of B - A, in (0, 1) (default: 0.95): a bootstrap over 64 "
                          "hash buckets of rows, the same replicates for both models, deterministic in every engine")
    opts = p.add_argument_group("metrics")
    opts.add_argument("--bins", type=int, default=15, metavar="N", help="calibration bins on [0, 1] (default: 15)")
    opts.add_argument("--eps", type=_eps, default="auto", help="probability clipping for the log loss: 'auto' "
                      "(dtype machine epsilon), a number, or 0 for none (default: auto)")
    opts.add_argument("--tolerance", type=float, default=1e-4, metavar="TOL",
                      help="multi-class rows must sum to 1 within TOL (default: 1e-4)")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print a, b, delta, delta_ci and verdict as JSON")
    out.add_argument("--plot", metavar="FILE.png",
                     help="write both models' reliability diagrams (and ROC curves) in one figure (needs matplotlib)")
    out.add_argument("--no-progress", action="store_true", help="no progress bar (it is only drawn on a terminal)")
    run_ = p.add_argument_group("execution")
    run_.add_argument("--threads", type=int, metavar="N", help="decoding threads (default: all cores)")
    run_.add_argument("--engine", choices=("local", "dask"), default="local", help="where to compute (default: local)")
    run_.add_argument("--scheduler", metavar="ADDR", help="dask: address of a running scheduler, tcp://HOST:PORT")
    run_.add_argument("--workers", type=int, metavar="N", help="dask: start a local cluster with N worker processes")
    p.set_defaults(run=run)


def _specs(args: argparse.Namespace) -> tuple[Any, Any]:
    from xent.scoring import ScoreSpec, compare_specs  # start-up time: `xent explain` and `--help` do not load it

    pred = args.logit or args.prob or ["prob"]
    flag = "--logit" if args.logit else "--prob"
    if args.vs is None and args.against is None:
        raise CLIError(f"compare: give model B's columns with --vs COL (the same files) or its files with --against PATH "
                       f"(model A is {flag} {' '.join(pred)})")
    try:
        spec = ScoreSpec(label=args.label, pred=tuple(pred), from_logits=bool(args.logit), weight=args.weight,
                         classes=_classes(args.classes), tolerance=args.tolerance, n_bins=args.bins, eps=args.eps,
                         by=tuple(args.by), max_segments=args.max_segments)
        return compare_specs(spec, args.vs, against=args.against, level=args.ci)
    except (TypeError, ValueError) as exc:
        msg = str(exc).replace("`n_bins`", "--bins").replace("`vs`", "--vs").replace("`against`", "--against")
        msg = msg.replace("`by`", "--by")
        msg = msg.replace("model A (", f"{flag} (")
        raise CLIError(f"compare: {msg}") from None


def run(args: argparse.Namespace) -> int:
    require("pyarrow", "xent compare")
    if args.plot:
        require("matplotlib", "--plot")
    from xent.scoring import ScoreInputError  # start-up time: `xent explain` and `--help` do not load the scorer

    spec_a, spec_b = _specs(args)
    if args.threads is not None and args.threads < 1:
        raise CLIError(f"compare: --threads must be >= 1, got {args.threads}")
    if args.engine == "local" and (args.scheduler or args.workers):
        raise CLIError("compare: --scheduler and --workers need --engine dask")
    progress = sys.stderr.isatty() and not args.no_progress
    try:
        if args.engine == "dask":
            report = _dask_compare(args, spec_a, spec_b, progress)
        else:
            from xent.scoring import compare  # start-up time: `xent explain` and `--help` do not load the scorer

            report = compare(args.paths, spec_a, spec_b.pred, against=args.against, level=args.ci,
                             threads=args.threads, progress=progress)
    except ScoreInputError as exc:
        raise CLIError(f"compare: {_with_hint(_worded(exc), args)}") from None
    except ValueError as exc:  # `against` names A's own files and columns
        raise CLIError(f"compare: {str(exc).replace('`against`', '--against').replace('`vs`', '--vs')}") from None
    for model, rep in (("A", report.a), ("B", report.b)):
        for warning in rep.warnings:
            print(f"xent: warning: model {model}: {warning}", file=sys.stderr)
    write_report(report, plot=args.plot, as_json=args.json, top=args.top, prefix="compare: ")
    return 0


def _dask_compare(args: argparse.Namespace, spec_a: Any, spec_b: Any, progress: bool) -> Any:
    from xent.scoring import ScoreInputError  # start-up time: `xent explain` and `--help` do not load the scorer

    try:
        from xent import dask as xdask  # optional dependency (the dask extra)
    except ImportError as exc:  # MissingDaskError's message already carries the install hint
        raise CLIError(f"compare: --engine dask: {exc}") from None
    try:
        return xdask.compare(args.paths, spec_a, spec_b.pred, against=args.against, level=args.ci,
                             scheduler=args.scheduler, workers=args.workers, progress=progress)
    except ScoreInputError:
        raise
    except (ValueError, ConnectionError, OSError) as exc:  # bad --workers, unreachable --scheduler
        raise CLIError(f"compare: --engine dask: {exc}") from None
