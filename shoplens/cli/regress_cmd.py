"""``shoplens regress NAME.yaml|--all [--small]``: run regression files and print OK / FAIL per metric."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from ..errors import ConfigError
from ..eval.regression import Outcome, Regression, Step, find_regressions, load_regression, run_regression


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "regress",
        help="run pinned benchmarks (regressions/*.yaml) and check their metrics",
        description="Each YAML names its commands and the metrics they must reach within a tolerance. "
        "Exit code 1 when any metric or command fails; a benchmark whose data is missing is skipped.",
    )
    p.add_argument("names", nargs="*", metavar="NAME.yaml", help="regression files, or names in --dir")
    p.add_argument("--all", action="store_true", help="every regression in --dir")
    p.add_argument("--small", action="store_true", help="only those marked small (quick enough for CI)")
    p.add_argument("--dir", type=Path, default=Path("regressions"), help="where regressions live (default: %(default)s)")
    p.add_argument("--work", type=Path, help="scratch folder for indexes and runs (kept; default: a temporary one)")
    p.add_argument("--shared", type=Path, help="the ${SHARED} data folder (default: $SHOPLENS_SHARED or ../shared/data)")
    p.add_argument("--verbose-steps", action="store_true", help="print every command's output")
    p.set_defaults(func=run_regress)


def _resolve(name: str, directory: Path) -> Path:
    for candidate in (Path(name), directory / name, directory / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"no regression file {name!r} (looked in . and {directory})")


def _select(args: argparse.Namespace) -> list[Regression]:
    if args.all == bool(args.names):
        raise ConfigError("name regression files or pass --all (not both)")
    if args.all:
        regs = find_regressions(args.dir, small_only=args.small)
        if not regs:
            raise ConfigError(f"no{' small' if args.small else ''} regression files in {args.dir}")
        return regs
    regs = [load_regression(_resolve(n, args.dir)) for n in args.names]
    return [r for r in regs if r.small or not args.small]


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join("      " + line for line in text.rstrip().splitlines()[-lines:])


def _num(v: float) -> str:
    return f"{v:.4f}" if abs(v) <= 1 else f"{v:g}"


def _print_outcome(out: Outcome) -> None:
    name = out.regression.name
    if out.skipped:
        print(f"SKIP {name}: {out.skipped}")
        return
    if out.error:
        step = out.steps[-1]
        print(f"FAIL {name}: {out.error}: {step.command}")
        print(_tail(step.stderr or step.stdout))
        return
    width = max((len(c.metric) for c in out.checks), default=8)
    for c in out.checks:
        got = "missing" if c.value is None else _num(c.value)
        verdict = "OK  " if c.ok else "FAIL"
        print(f"{verdict} {name}  {c.metric:<{width}}  {got:>8}  (expected {_num(c.expected)} ± {c.tolerance:g})")


def run_regress(args: argparse.Namespace) -> int:
    regs = _select(args)
    work = args.work or Path(tempfile.mkdtemp(prefix="shoplens-regress-"))

    def on_step(step: Step) -> None:
        print(f"  [{step.name}] {step.seconds:6.1f} s  {step.command}", flush=True)
        if args.verbose_steps:
            print(_tail(step.stdout + step.stderr, 40))

    outcomes = []
    try:
        for reg in regs:
            print(f"== {reg.name}" + (f": {reg.description}" if reg.description else ""), flush=True)
            outcome = run_regression(reg, work, args.shared, on_step)
            _print_outcome(outcome)
            outcomes.append(outcome)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    n_ok = sum(o.ok for o in outcomes)
    n_skip = sum(o.skipped is not None for o in outcomes)
    n_fail = len(outcomes) - n_ok - n_skip
    print(f"== {len(outcomes)} regression(s): {n_ok} OK, {n_fail} FAIL, {n_skip} SKIP")
    return 1 if n_fail else 0
