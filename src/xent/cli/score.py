"""``xent score``: stream prediction files through the metric states and print the metrics."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Literal

from xent.cli import CLIError, require
from xent.cli._output import write_report

Engine = Literal["local", "dask"]

EXAMPLES = """\
examples:
  xent score examples/data/ctr_sample.parquet --label clicked --prob p_click
  xent score preds/ --label y --logit score --weight w --json > metrics.json
  xent score 'logs/*.parquet' --label y --prob p --plot reliability.png
  xent score val.csv --label species --prob p_setosa p_versicolor p_virginica \\
      --classes setosa,versicolor,virginica
  xent score lm.parquet --label token --logit logits            # a list column of per-class logits
  xent score big/ --label y --prob p --on-invalid skip --threads 2
  xent score big/ --label y --prob p --engine dask --workers 4
  xent score examples/data/ctr_sample.parquet --label clicked --prob p_click --by device --ci 0.95

Binary input: one probability (--prob) or logit (--logit) column of the positive
class (classes[1]). Multi-class input: one column per class, or one list column.
Labels are integers or strings; --classes gives the class list (default 0,1 for
binary, 0..K-1 for multi-class). Probabilities are clipped to [eps, 1 - eps] for
the log loss only (eps = machine epsilon of the column's dtype, as scikit-learn).
Rows are numbered from 0 (the first data row) in error messages.
Exit status: 0 ok, 2 bad input or usage (one line on stderr).
"""


def _classes(text: str | None) -> tuple[Any, ...] | None:
    if text is None:
        return None
    items = [s.strip() for s in text.split(",")]
    if any(not s for s in items):
        raise CLIError(f"--classes must be a comma-separated list of class names, got {text!r}")
    try:
        return tuple(int(s) for s in items)
    except ValueError:
        return tuple(items)


def _eps(text: str) -> float | str:
    if text == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a number, got {text!r}") from None


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return v


def _level(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"must be a confidence level in (0, 1), e.g. 0.95, got {text!r}")
    return v


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "score",
        help="score prediction files: log loss, NE, calibration, Brier, per-class tables",
        description="Stream prediction files (Parquet, CSV, NPY/NPZ; files, directories or globs) and compute "
                    "log loss (nats, bits), perplexity, normalized entropy, RIG, Brier, accuracy, calibration "
                    "ratio, ECE/MCE with a reliability table, and per-class figures for multi-class input. "
                    "Memory stays constant whatever the file size.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files, directories or glob patterns")
    cols = p.add_argument_group("columns")
    cols.add_argument("--label", default="label", metavar="COL", help="label column (default: label)")
    pred = cols.add_mutually_exclusive_group()
    pred.add_argument("--prob", nargs="+", metavar="COL",
                      help="probability column(s): one (binary, or a list column), or one per class "
                           "(default: prob)")
    pred.add_argument("--logit", nargs="+", metavar="COL", help="logit column(s), instead of --prob")
    cols.add_argument("--weight", metavar="COL", help="optional per-row weight column")
    cols.add_argument("--classes", metavar="A,B,...", help="class list, comma-separated (labels are matched to it)")
    opts = p.add_argument_group("metrics")
    opts.add_argument("--bins", type=int, default=15, metavar="N", help="calibration bins on [0, 1] (default: 15)")
    opts.add_argument("--eps", type=_eps, default="auto", help="probability clipping for the log loss: 'auto' "
                      "(dtype machine epsilon), a number, or 0 for none (default: auto)")
    opts.add_argument("--tolerance", type=float, default=1e-4, metavar="TOL",
                      help="multi-class rows must sum to 1 within TOL (default: 1e-4)")
    opts.add_argument("--on-invalid", choices=("error", "skip"), default="error",
                      help="bad rows: stop with an error naming file, row and column (default), or skip and count them")
    seg = p.add_argument_group("segments and confidence intervals")
    seg.add_argument("--by", action="append", metavar="COL", default=[],
                     help="segment by this string or integer column (repeatable; NULL is a segment of its own): "
                          "rows, weight, log loss, NE (the segment's own prior), calibration ratio, Brier, AUC and ECE "
                          "per value")
    seg.add_argument("--top", type=_positive, default=20, metavar="N",
                     help="segments shown per --by column, largest weight first (default: 20; the JSON has all)")
    seg.add_argument("--max-segments", type=_positive, default=100_000, metavar="N",
                     help="stop with an error above N distinct values of a --by column (default: 100000)")
    seg.add_argument("--ci", type=_level, metavar="LEVEL",
                     help="confidence intervals at LEVEL (e.g. 0.95) for log loss, NE, Brier, accuracy, calibration "
                          "ratio, ECE and ROC AUC, overall and per segment: a bootstrap over 64 hash buckets of rows "
                          "(file name and row number), deterministic in every engine")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the metrics as JSON on stdout")
    out.add_argument("--plot", metavar="FILE.png", help="write a reliability diagram (needs matplotlib)")
    out.add_argument("--no-progress", action="store_true", help="no progress bar (it is only drawn on a terminal)")
    run_ = p.add_argument_group("execution")
    run_.add_argument("--threads", type=int, metavar="N", help="decoding threads (default: all cores)")
    run_.add_argument("--engine", choices=("local", "dask"), default="local", help="where to compute (default: local)")
    run_.add_argument("--scheduler", metavar="ADDR", help="dask: address of a running scheduler, tcp://HOST:PORT")
    run_.add_argument("--workers", type=int, metavar="N", help="dask: start a local cluster with N worker processes")
    p.set_defaults(run=run)


def spec_from_args(args: argparse.Namespace) -> Any:
    """The :class:`xent.scoring.ScoreSpec` the options describe."""
    from xent.scoring import ScoreSpec  # start-up time: `xent explain` and `--help` do not load the scorer

    pred = args.logit or args.prob or ["prob"]
    try:
        return ScoreSpec(label=args.label, pred=tuple(pred), from_logits=bool(args.logit), weight=args.weight,
                         classes=_classes(args.classes), tolerance=args.tolerance, on_invalid=args.on_invalid,
                         n_bins=args.bins, eps=args.eps, by=tuple(args.by), ci=args.ci,
                         max_segments=args.max_segments)
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc).replace("`n_bins`", "--bins").replace("`by`", "--by")) from None


def run(args: argparse.Namespace) -> int:
    require("pyarrow", "xent score")  # reads every format; before any work, as one line
    if args.plot:
        require("matplotlib", "--plot")
    from xent.scoring import ScoreInputError  # start-up time: `xent explain` and `--help` do not load the scorer

    spec = spec_from_args(args)
    if args.threads is not None and args.threads < 1:
        raise CLIError(f"--threads must be >= 1, got {args.threads}")
    if args.engine == "local" and (args.scheduler or args.workers):
        raise CLIError("--scheduler and --workers need --engine dask")
    progress = sys.stderr.isatty() and not args.no_progress
    try:
        if args.engine == "dask":
            report = _dask_score(args, spec, progress)
        else:
            from xent.scoring import score  # start-up time: `xent explain` and `--help` do not load the scorer

            report = score(args.paths, spec, threads=args.threads, progress=progress)
    except ScoreInputError as exc:
        raise CLIError(_with_hint(_worded(exc), args)) from None
    for warning in report.warnings:
        print(f"xent: warning: {warning}", file=sys.stderr)
    write_report(report, plot=args.plot, as_json=args.json, top=args.top)
    return 0


# The ScoreSpec fields that input errors name (in backticks), as this command's flags.
FLAGS = {"tolerance": "--tolerance", "from_logits": "--logit"}


def _worded(exc: Any) -> Any:
    """The input error with the options it names written as flags: ```tolerance``` -> ``--tolerance``."""
    message = exc.message
    for field, flag in FLAGS.items():
        message = message.replace(f"`{field}`", flag)
    if message == exc.message:
        return exc
    return type(exc)(message, source=exc.source, row=exc.row, column=exc.column)


def _with_hint(exc: Any, args: argparse.Namespace) -> str:
    """The error's one line, with what to do when a label is not one of the classes."""
    if exc.column != args.label or "not in the class list" not in exc.message:
        return str(exc)
    if args.classes is None:
        return (f"{exc}; labels other than 0, 1 (binary) or 0..K-1 need --classes, e.g. --classes no,yes "
                "(binary: the positive class last)")
    return f"{exc}; add it to --classes, or check the spelling of --classes"


def _dask_score(args: argparse.Namespace, spec: Any, progress: bool) -> Any:
    from xent.scoring import ScoreInputError  # start-up time: `xent explain` and `--help` do not load the scorer

    try:
        from xent import dask as xdask  # optional dependency (the dask extra)
    except ImportError as exc:  # MissingDaskError's message already carries the install hint
        raise CLIError(f"--engine dask: {exc}") from None
    try:
        return xdask.score(args.paths, spec, scheduler=args.scheduler, workers=args.workers, progress=progress)
    except ScoreInputError:
        raise  # located input errors: the caller prints them like the local engine's
    except (ValueError, ConnectionError, OSError) as exc:  # bad --workers, unreachable --scheduler
        raise CLIError(f"--engine dask: {exc}") from None
