"""Regression files in the pyserini style: a YAML pins a benchmark's commands and expected metrics; run and compare."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shlex
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, MissingDependencyError

log = logging.getLogger(__name__)

DEFAULT_TOLERANCE = 0.005
_VAR = re.compile(r"\$\{([A-Z_]+)\}")


@dataclass(frozen=True)
class Regression:
    """One benchmark pinned by a YAML file: commands to run in order and the metrics they must reach."""

    name: str
    path: Path
    description: str
    small: bool
    requires: tuple[str, ...]
    commands: tuple[tuple[str, str], ...]  # (step name, command line with ${VARS})
    expected: Mapping[str, float]
    tolerance: float
    metrics_from: str

    @property
    def root(self) -> Path:
        """Where commands run and relative paths start: the folder holding ``regressions/``."""
        folder = self.path.resolve().parent
        return folder.parent if folder.name == "regressions" else folder


@dataclass(frozen=True)
class Step:
    """One command as it ran: its exit code, wall time and captured output."""

    name: str
    command: str
    returncode: int
    seconds: float
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Check:
    """One expected metric against the measured value (None when the command did not report it)."""

    metric: str
    expected: float
    tolerance: float
    value: float | None

    @property
    def ok(self) -> bool:
        # The small epsilon absorbs float noise in values printed with 4 decimals.
        return self.value is not None and abs(self.value - self.expected) <= self.tolerance + 1e-9


@dataclass(frozen=True)
class Outcome:
    """The result of one regression: SKIP (with why), a failed step, or the metric checks."""

    regression: Regression
    steps: tuple[Step, ...] = ()
    checks: tuple[Check, ...] = ()
    skipped: str | None = None
    error: str | None = None
    seconds: float = field(default=0.0, compare=False)

    @property
    def ok(self) -> bool:
        return self.skipped is None and self.error is None and all(c.ok for c in self.checks)


def _load_yaml(path: Path) -> Any:
    try:
        import yaml
    except ImportError:
        raise MissingDependencyError("pyyaml", "report", "regression files") from None
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read regression file {path}: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    return float(value)


def load_regression(path: str | Path) -> Regression:
    """Read and validate a regression YAML; every problem names the file and the field."""
    path = Path(path)
    doc = _load_yaml(path)
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping with 'commands' and 'expected'")
    commands = doc.get("commands")
    if isinstance(commands, list):
        commands = {f"step{i}": c for i, c in enumerate(commands, start=1)}
    if not isinstance(commands, dict) or not commands or not all(isinstance(c, str) for c in commands.values()):
        raise ConfigError(f"{path}: 'commands' must map step names (index, run, eval) to command lines")
    expected = doc.get("expected")
    if not isinstance(expected, dict) or not expected:
        raise ConfigError(f"{path}: 'expected' must map metric names to values")
    requires = doc.get("requires") or []
    if isinstance(requires, str):
        requires = [requires]
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise ConfigError(f"{path}: 'requires' must be a list of paths")
    metrics_from = str(doc.get("metrics_from") or ("eval" if "eval" in commands else list(commands)[-1]))
    if metrics_from not in commands:
        raise ConfigError(f"{path}: 'metrics_from' names no step: {metrics_from!r}")
    return Regression(
        name=str(doc.get("name") or path.stem),
        path=path,
        description=str(doc.get("description") or "").strip(),
        small=bool(doc.get("small", False)),
        requires=tuple(requires),
        commands=tuple((str(k), v) for k, v in commands.items()),
        expected={str(k): _number(v, f"{path}: expected {k}") for k, v in expected.items()},
        tolerance=_number(doc.get("tolerance", DEFAULT_TOLERANCE), f"{path}: 'tolerance'"),
        metrics_from=metrics_from,
    )


def find_regressions(directory: str | Path, small_only: bool = False) -> list[Regression]:
    """Every ``*.yaml`` regression in ``directory`` (sorted by name), optionally only the small ones."""
    found = [load_regression(p) for p in sorted(Path(directory).glob("*.yaml"))]
    return [r for r in found if r.small or not small_only]


def default_shared(root: Path) -> Path:
    """``${SHARED}``: $SHOPLENS_SHARED if set, else ``../shared/data`` beside the repository."""
    env = os.environ.get("SHOPLENS_SHARED")
    return Path(env) if env else root.parent / "shared" / "data"


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """Replace ``${NAME}`` by its value; an unknown name is an error, not an empty string."""

    def repl(m: re.Match[str]) -> str:
        if m.group(1) not in variables:
            raise ConfigError(f"unknown variable ${{{m.group(1)}}} in {text!r} (known: {', '.join(variables)})")
        return variables[m.group(1)]

    return _VAR.sub(repl, text)


def last_json(stdout: str) -> dict[str, Any]:
    """The last line of ``stdout`` that is a JSON object (where shoplens commands print their numbers)."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                obj = json.loads(line)
                if isinstance(obj, dict):
                    return obj
    return {}


def check_metrics(expected: Mapping[str, float], tolerance: float, measured: Mapping[str, Any]) -> list[Check]:
    """Compare each expected metric with the measured one (missing or non-numeric → value None)."""
    checks = []
    for name, want in expected.items():
        got = measured.get(name)
        value = float(got) if isinstance(got, int | float) and not isinstance(got, bool) else None
        checks.append(Check(name, want, tolerance, value))
    return checks


def _run_in_process(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run a ``shoplens`` command in this process: the same CLI, without re-importing the models' runtimes."""
    from ..cli.main import main  # here, not at the top: the CLI sits above the eval package

    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as e:  # argparse rejected the command line
            code = e.code if isinstance(e.code, int) else 2
        except Exception:  # a bug in a step must fail the regression, not crash the runner
            err.write(traceback.format_exc())
            code = 1
    return code, out.getvalue(), err.getvalue()


def run_command(command: str, cwd: Path, timeout: float | None = None) -> tuple[int, str, str]:
    """Run one command line (no shell): ``shoplens …`` in process, ``python …`` with this interpreter."""
    argv = shlex.split(command)
    if not argv:
        raise ConfigError("empty command")
    if argv[0] == "shoplens":
        return _run_in_process(argv[1:], cwd)
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 127, "", str(e)
    return proc.returncode, proc.stdout, proc.stderr


EMBEDDINGS_ENV = "SHOPLENS_EMBEDDINGS"


@contextlib.contextmanager
def embeddings_in(work: Path) -> Iterator[None]:
    """Steps run with the embedding cache in ``work`` (config.embedding_cache_path): a cached text
    vector is the one its first batch gave, so with the user's own cache the pinned metrics would
    depend on what it encoded before (up to ±0.02 nDCG@10 measured). An explicit
    ``SHOPLENS_EMBEDDINGS`` is kept; the model files stay in the user's cache."""
    before = os.environ.get(EMBEDDINGS_ENV)
    if before is None:
        os.environ[EMBEDDINGS_ENV] = str(work / "embeddings.sqlite")
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(EMBEDDINGS_ENV, None)


def run_regression(
    reg: Regression,
    work: Path,
    shared: Path | None = None,
    on_step: Callable[[Step], None] | None = None,
    timeout: float | None = 3600.0,
) -> Outcome:
    """Run ``reg``'s commands in order from its root and check the metrics the ``metrics_from`` step printed.

    ``${ROOT}``, ``${SHARED}`` and ``${WORK}`` (a scratch folder shared by the regressions of one
    invocation, so that several benchmarks on one catalogue reuse its index) are substituted first.
    The steps use an embedding cache in ``work`` (embeddings_in).
    """
    t0 = time.perf_counter()
    work = work.resolve()  # the commands run from reg.root, so no variable may stay relative
    shared = (shared or default_shared(reg.root)).resolve()
    variables = {"ROOT": str(reg.root), "SHARED": str(shared), "WORK": str(work)}
    for need in reg.requires:
        target = Path(substitute(need, variables))
        if not (target if target.is_absolute() else reg.root / target).exists():
            why = f"{need} not found ({target}); set SHOPLENS_SHARED or --shared to the data folder"
            return Outcome(reg, skipped=why, seconds=time.perf_counter() - t0)
    work.mkdir(parents=True, exist_ok=True)
    steps: list[Step] = []
    measured: dict[str, Any] = {}
    with embeddings_in(work):
        for name, template in reg.commands:
            command = substitute(template, variables)
            log.info("%s: %s: %s", reg.name, name, command)
            start = time.perf_counter()
            code, out, err = run_command(command, reg.root, timeout)
            step = Step(name, command, code, time.perf_counter() - start, out, err)
            steps.append(step)
            if on_step is not None:
                on_step(step)
            if code != 0:
                error = f"step {name!r} exited with code {code}"
                return Outcome(reg, tuple(steps), error=error, seconds=time.perf_counter() - t0)
            if name == reg.metrics_from:
                measured = last_json(out)
    checks = check_metrics(reg.expected, reg.tolerance, measured)
    return Outcome(reg, tuple(steps), tuple(checks), seconds=time.perf_counter() - t0)


if __name__ == "__main__":
    from ..cli.main import main as _main

    sys.exit(_main(["regress", *sys.argv[1:]]))
