"""``make bench``: runs every ``tests/bench/bench_*.py``, prints their tables and writes
``bench/results/<name>.json``.

A bench module exposes ``main(quick: bool) -> dict`` (called in this process). A module without such
a ``main`` is run as ``python tests/bench/bench_<name>.py [--quick]`` in a subprocess; it prints and
writes its own results.

    .venv/bin/python tests/bench/run.py            # everything, full length
    .venv/bin/python tests/bench/run.py --quick    # short runs
    .venv/bin/python tests/bench/run.py --only http

The HTTP bench needs ``wrk``: when it is missing, ``scripts/install-wrk.sh`` installs it (Debian's
package); if that fails the bench falls back to an aiohttp client process.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = ROOT / "bench" / "results"
for _p in (str(ROOT), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)


def discover() -> dict[str, Path]:
    return {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    script = ROOT / "scripts" / "install-wrk.sh"
    print(f"wrk not found: running {script.relative_to(ROOT)}", flush=True)
    try:
        subprocess.run(["sh", str(script)], check=True, timeout=600)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"could not install wrk ({exc}); the HTTP bench will use its aiohttp client instead", flush=True)


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _entry(module: ModuleType) -> Callable[[bool], Any] | None:
    """``main(quick)`` if the module has one we can call with the quick flag, else None."""
    main = getattr(module, "main", None)
    if not callable(main):
        return None
    try:
        params = list(inspect.signature(main).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.name == "quick" for p in params):
        return lambda quick: main(quick=quick)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in params if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if len(positional) >= 1 and len(required) <= 1 and positional[0].annotation in (bool, "bool"):
        return lambda quick: main(quick)
    return None


def _print_generic(name: str, result: dict[str, Any]) -> None:
    """For benches that return rows without printing them."""
    from rich.console import Console
    from rich.table import Table

    rows = result.get("rows")
    console = Console(width=None if sys.stdout.isatty() else 130)
    if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
        columns = list(dict.fromkeys(k for r in rows for k, v in r.items() if not isinstance(v, dict | list)))
        table = Table(title=f"bench {name}")
        for col in columns:
            table.add_column(str(col))
        for r in rows:
            table.add_row(*(str(r.get(c, "")) for c in columns))
        console.print(table)
    else:
        console.print_json(json.dumps(result, default=str))


def run_one(name: str, path: Path, quick: bool) -> tuple[bool, str]:
    started = time.monotonic()
    print(f"\n== bench {name}{' (quick)' if quick else ''} ==", flush=True)
    if name == "http":
        ensure_wrk()
    module = _load(name, path)
    entry = _entry(module)
    if entry is None:
        argv = [sys.executable, str(path)] + (["--quick"] if quick else [])
        code = subprocess.run(argv, cwd=ROOT, check=False).returncode
        return code == 0, f"{name}: subprocess exit {code} in {time.monotonic() - started:.0f} s"
    result = entry(quick)
    if not isinstance(result, dict):
        result = {"result": result}
    if not result.get("printed"):
        _print_generic(name, result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    ok = result.get("ok", True) is not False
    return ok, f"{name}: {'ok' if ok else 'INVALID'} in {time.monotonic() - started:.0f} s -> {out.relative_to(ROOT)}"


def main(argv: list[str] | None = None) -> int:
    benches = discover()
    parser = argparse.ArgumentParser(description="Run the benchmarks (tests/bench/bench_*.py).")
    parser.add_argument("--quick", action="store_true", help="short runs")
    parser.add_argument("--only", metavar="NAME", action="append", choices=sorted(benches),
                        help=f"run only this bench (repeatable): {', '.join(sorted(benches))}")
    args = parser.parse_args(argv)
    selected = {n: p for n, p in benches.items() if not args.only or n in args.only}
    summary: list[str] = []
    all_ok = True
    for name, path in selected.items():
        try:
            ok, line = run_one(name, path, args.quick)
        except Exception:  # one broken bench must not hide the others
            traceback.print_exc()
            ok, line = False, f"{name}: FAILED (traceback above)"
        all_ok &= ok
        summary.append(line)
    print("\n" + "\n".join(summary), flush=True)
    return 0 if all_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
