"""Run every benchmark section and write bench/REPORT.md."""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

# Each module defines ``run(quick: bool) -> str`` returning a Markdown section.
SECTIONS = [
    "bench.decision",
    "bench.http",
    "bench.latency",
    "bench.gather",
    "bench.batch",
    "bench.dask_scoring",
    "bench.audit",
    "bench.outage",
    "bench.reasons",
    "bench.recourse",
    "bench.dashboard",
    "bench.backtest_queue",
]

REPORT = Path(__file__).with_name("REPORT.md")


def _versions() -> str:
    names = ["flashloan", "xgboost", "shap", "numpy", "pandas", "sqlalchemy", "flask", "gunicorn"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--only", action="append", help="run only these sections")
    parser.add_argument("--out", type=Path, default=REPORT)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    parts = [
        "# Benchmark report\n",
        f"- generated: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {platform.machine()}, {platform.processor() or 'unknown cpu'}, "
        f"{_cpu_count()} cores, Python {platform.python_version()}",
        f"- versions: {_versions()}",
        f"- reproduce: `make bench` (or `python -m bench{' --quick' if args.quick else ''}`)\n",
    ]
    for name in SECTIONS:
        short = name.rsplit(".", 1)[-1]
        if args.only and short not in args.only:
            continue
        print(f"[bench] {short} ...", file=sys.stderr, flush=True)
        module = importlib.import_module(name)
        parts.append(module.run(quick=args.quick).rstrip() + "\n")
    parts.append(f"_Total benchmark time: {time.perf_counter() - started:.0f} s._\n")
    args.out.write_text("\n".join(parts), encoding="utf-8")
    print(f"[bench] wrote {args.out}", file=sys.stderr)
    return 0


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


if __name__ == "__main__":
    raise SystemExit(main())
