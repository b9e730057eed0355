"""``xent explain``: print where every cross-entropy number comes from, step by step.

The computation lives in :mod:`xent.explain`; this module only parses the
command line (numbers, fractions such as ``26/30``, rows separated by ``;``)
and prints text, JSON or a plot.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from fractions import Fraction
from typing import Any

from xent.cli import CLIError, _Parser, require

__all__ = ["parse_numbers", "parse_rows", "register", "run"]

EPILOG = """\
examples:
  xent explain binary --labels 1,1,0 --probs 0.8,0.7,0.1
  xent explain binary --labels 1,0 --logits 2.5,-1 --grad
  xent explain categorical --target 0 --probs 0.775,0.116,0.039,0.070 --base 2
  xent explain categorical --target 1 --logits 2.0,1.0,0.1 --grad
  xent explain categorical --target "0.7,0.3,0" --probs "0.6,0.3,0.1"
  xent explain categorical --target 0,2 --probs "0.7,0.2,0.1; 0.1,0.3,0.6"
  xent explain entropy --p 26/30,4/30 --base 2
  xent explain kl --p 0.5,0.5 --q 0.9,0.1 --plot kl.png

numbers: decimals (0.775, 1e-3) or fractions (26/30); rows of several examples
are separated by ';' (quote them for the shell). --json prints the same numbers
as the library returns.
"""


def _number(text: str, flag: str, where: str) -> float:
    token = text.strip()
    try:
        # Fraction parses "26/30", "0.775" and "1e-3" exactly; float() then rounds once.
        value = float(Fraction(token))
    except (ValueError, ZeroDivisionError):
        raise CLIError(f"{flag}: cannot parse {token!r} as a number ({where})") from None
    except OverflowError:  # 1e400: exact as a Fraction, beyond float64
        raise CLIError(f"{flag}: {token} is beyond the float range (magnitude at most {sys.float_info.max:.4g}) "
                       f"({where})") from None
    return value


def parse_numbers(text: str, flag: str) -> list[float]:
    """``"0.8, 0.7, 26/30"`` -> floats; an unparseable entry is a one-line CLIError."""
    parts = text.split(",")
    if not text.strip():
        raise CLIError(f"{flag}: expected a comma-separated list of numbers, got an empty string")
    return [_number(t, flag, f"position {i}") for i, t in enumerate(parts)]


def parse_rows(text: str, flag: str) -> list[list[float]]:
    """``"0.7,0.3; 0.2,0.8"`` -> rows of floats, all of one length."""
    rows = [r for r in text.split(";")]
    out = []
    for r, row in enumerate(rows):
        try:
            out.append(parse_numbers(row, flag))
        except CLIError as exc:
            raise CLIError(f"{exc} in row {r}" if len(rows) > 1 else str(exc)) from None
    if len({len(r) for r in out}) > 1:
        raise CLIError(f"{flag}: every row must have the same number of values, got {[len(r) for r in out]}")
    return out


def _base(text: str) -> float | None:
    if text.strip().lower() == "e":
        return math.e  # nats beside nats
    return _number(text, "--base", "expected e, 2, 10 or another number > 0 other than 1")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", type=str, default=None, metavar="B",
                   help="log base shown beside nats: 2 (bits, the default), 10, e, ...")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of text")
    p.add_argument("--plot", metavar="FILE.png", help="draw -ln p against p with the given points marked")
    p.add_argument("--digits", type=int, default=5, help="decimals shown in text output (default 5)")


def _prediction(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--probs", metavar="P", help="predicted probabilities, comma-separated")
    g.add_argument("--logits", metavar="Z", help="logits (scores before sigmoid/softmax), comma-separated")
    p.add_argument("--grad", action="store_true", help="also show the gradient of the mean loss")
    p.add_argument("--exact", action="store_true",
                   help="do not clip probabilities at machine epsilon (p = 0 for the truth gives inf)")


# "-1,2" or "-0.5;1" is a list of numbers, not an option: argparse's own matcher only knows "-1".
_NEGATIVE_LIST = re.compile(r"^-(\d|\.\d)")


def _allow_negative_lists(parser: argparse.ArgumentParser) -> None:
    if hasattr(parser, "_negative_number_matcher"):
        parser._negative_number_matcher = _NEGATIVE_LIST


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="show, step by step, where a cross-entropy number comes from",
        description="Show, step by step, where a cross-entropy number comes from: formula and numbers.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(title="what to explain", metavar="KIND", dest="kind", parser_class=_Parser)
    sub.required = True
    b = sub.add_parser("binary", help="binary cross-entropy (log loss) of 0/1 labels")
    b.add_argument("--labels", required=True, metavar="Y", help="labels in [0, 1], comma-separated")
    _prediction(b)
    c = sub.add_parser("categorical", help="categorical cross-entropy of a class index, one-hot or soft target")
    c.add_argument("--target", required=True, metavar="T",
                   help="class indices (one per example, e.g. 0 or 0,2) or target rows (one-hot or soft)")
    _prediction(c)
    for kind in (b, c):
        _common(kind)
        _allow_negative_lists(kind)
    measures = {
        "entropy": ("entropy H(p) (and, with --q, H(p, q), KL and JS)", "entropy"),
        "cross-entropy": ("cross-entropy H(p, q) of two distributions", "cross_entropy"),
        "kl": ("KL divergence KL(p || q)", "kl"),
        "js": ("Jensen-Shannon divergence of p and q", "js"),
    }
    for name, (text, measure) in measures.items():
        d = sub.add_parser(name, help=text)
        d.add_argument("--p", required=True, metavar="P", help="distribution p, comma-separated (fractions allowed)")
        d.add_argument("--q", required=measure != "entropy", metavar="Q", help="distribution q, comma-separated")
        _common(d)
        _allow_negative_lists(d)
        d.set_defaults(measure=measure)
    parser.set_defaults(run=run)


def _explain(args: argparse.Namespace) -> Any:
    from xent import explain as ex  # start-up time: `xent score` and `--help` do not load it

    base = _base(args.base) if args.base is not None else None
    kind = args.kind
    pred: dict[str, Any]
    try:
        if kind == "binary":
            pred = {"probs": parse_numbers(args.probs, "--probs")} if args.probs is not None else {
                "logits": parse_numbers(args.logits, "--logits")}
            return ex.explain_binary(parse_numbers(args.labels, "--labels"), base=base, grad=args.grad,
                                     exact=args.exact, **pred)
        if kind == "categorical":
            pred = {"probs": parse_rows(args.probs, "--probs")} if args.probs is not None else {
                "logits": parse_rows(args.logits, "--logits")}
            target_rows = parse_rows(args.target, "--target")
            target: Any = target_rows[0] if len(target_rows) == 1 else target_rows
            n = len(next(iter(pred.values())))
            if len(target_rows) == 1 and n == 1 and len(target_rows[0]) == 1:
                target = target_rows[0][0]
            return ex.explain_categorical(target, base=base, grad=args.grad, exact=args.exact, **pred)
        q = parse_numbers(args.q, "--q") if args.q is not None else None
        return ex.explain_distributions(parse_numbers(args.p, "--p"), q, base=base, measure=args.measure)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"explain {kind}: {exc}") from None


def _headline(e: Any) -> str:
    from xent.explain import quantity  # start-up time: `xent score` and `--help` do not load it

    r = e.results
    base = r["base"]

    def both(nats: float, in_base: float) -> str:  # "0.5 nats = 0.72 bits", or "0.5 nats" alone for --base e
        return quantity(nats, None) if base == math.e else f"{quantity(nats, None)} = {quantity(in_base, base)}"

    if e.kind == "distributions":
        names = {"entropy": "H(p)", "cross_entropy": "H(p, q)", "kl": "KL(p || q)", "js": "JS(p, q)"}
        return f"{names[r['measure']]} = {both(r['value'], r['value_base'])}"
    return f"mean loss = {both(r['mean'], r['mean_base'])}; sum = {both(r['sum'], r['sum_base'])}"


def run(args: argparse.Namespace) -> int:
    if args.digits < 0 or args.digits > 17:
        raise CLIError(f"--digits must be in [0, 17], got {args.digits}")
    if args.plot:
        require("matplotlib", "--plot")
    e = _explain(args)
    if args.plot:
        from xent.explain import plot_explanation  # start-up time: `xent score` and `--help` do not load it

        try:
            plot_explanation(e, args.plot)
        except (OSError, ValueError) as exc:
            raise CLIError(f"--plot: cannot write {args.plot!r}: {exc}") from None
    if args.json:
        print(json.dumps(e.to_dict(), indent=2))
    else:
        print(e.to_text(digits=args.digits))
        print(f"=> {_headline(e)}")
    if args.plot:
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
