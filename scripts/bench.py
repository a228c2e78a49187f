#!/usr/bin/env python3
"""Loop benchmark runner: starts its own gunicorn servers and measures them.

    .venv/bin/python scripts/bench.py                        # every scenario
    .venv/bin/python scripts/bench.py --scenario foundation  # one (repeatable)
    .venv/bin/python scripts/bench.py --list

Servers run in dedicated ``LOOP_NAMESPACE`` s (deleted afterwards) on a private redis-server
started for the run, or on the Redis of ``--redis-url`` (only when given: a benchmark writes
100,000s of keys, so it never picks up ``$REDIS_URL`` or a local Redis by itself).
Scenarios live in ``scripts/benchmarks/``.
The figures of a run are only comparable with each other: read the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchmarks  # noqa: E402
from benchmarks.harness import Bench, private_redis, redis_binaries, redis_version  # noqa: E402

from loop.devserver import ping  # noqa: E402


@contextlib.contextmanager
def choose_redis(url: str | None, private: bool) -> Iterator[str]:
    """The Redis of ``--redis-url`` if given (and not ``--private-redis``), else a private one."""
    if url and not private:
        if not ping(url):
            raise SystemExit(f"--redis-url {url} does not answer PING")
        yield url
        return
    with private_redis(redis_binaries()[0]) as own:
        yield own


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--scenario", action="append", help="scenario to run (repeatable; default: all)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--redis-url", help="an existing Redis for the servers (default: a private redis-server)")
    p.add_argument("--private-redis", action="store_true", help="a private redis-server (the default; wins over --redis-url)")
    p.add_argument("--duration", type=float, default=2.0, help="seconds per measurement (default 2)")
    p.add_argument("--warmup", type=float, default=0.5, help="unrecorded seconds before each measurement")
    p.add_argument("--concurrency", type=int, default=4, help="client threads (default 4)")
    p.add_argument("--workers", type=int, default=3, help="gunicorn workers per server (default 3, as the Procfile)")
    p.add_argument("--worker-class", default="gthread", help="gunicorn worker class (default gthread, as the Procfile)")
    p.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default 4, as the Procfile)")
    p.add_argument("--no-reuse-port", action="store_true",
                   help="one listening socket shared by the workers (the Procfile gives each its own: --reuse-port)")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds for ratios (default 5)")
    p.add_argument("--small", type=int, default=1000, help="foundation: small backlog size")
    p.add_argument("--big", type=int, default=100_000, help="foundation: big backlog size")
    p.add_argument("--memory-issues", type=int, default=3000, help="foundation: issues created for memory")
    p.add_argument("--no-extras", action="store_true", help="foundation: skip the informative list shapes")
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="scenario option (repeatable), e.g. -o parts=list,memory")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = p.parse_args(argv)

    if args.list:
        for name in benchmarks.names():
            print(f"{name:<14} {benchmarks.summary(benchmarks.load(name))}")
        return 0
    modules = [benchmarks.load(n) for n in (args.scenario or benchmarks.names())]
    options: dict[str, object] = {"small": args.small, "big": args.big, "memory_issues": args.memory_issues,
                                  "extras": not args.no_extras}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--option wants KEY=VALUE, got {item!r}")
        options[key.strip()] = value
    started = time.time()
    with choose_redis(args.redis_url, args.private_redis) as url:
        bench = Bench(url, args.duration, args.warmup, args.concurrency, args.workers, args.rounds, options)
        bench.gunicorn_args = ["--worker-class", args.worker_class, "--threads", str(args.threads),
                               *([] if args.no_reuse_port else ["--reuse-port"])]
        print(f"Loop benchmark: python {platform.python_version()}, {os.cpu_count()} CPUs, "
              f"{args.workers} gunicorn {args.worker_class} workers x {args.threads} threads"
              f"{'' if args.no_reuse_port else ' (--reuse-port)'}, {args.concurrency} client threads, {args.duration}s per "
              f"measurement; Redis {url}; redis-server binaries: "
              + ", ".join(f"{b} {redis_version(b)}" for b in redis_binaries()), flush=True)
        for module in modules:
            print(f"\n### {module.__name__.split('.')[-1]}: {benchmarks.summary(module)}", flush=True)
            module.run(bench)
    print("\nSummary")
    for r in bench.ratios:
        print(f"  [{'ok' if r.ok else 'MISS'}] {r.name}: {r.value:.3g} (target {r.target})")
    if args.json:
        args.json.write_bytes(orjson.dumps({
            "started": started, "args": {k: str(v) for k, v in vars(args).items()},
            "results": [r.row() for r in bench.results], "ratios": [vars(r) for r in bench.ratios],
            "notes": bench.notes, "data": bench.data}, option=orjson.OPT_INDENT_2))
    return 0 if all(r.ok for r in bench.ratios) else 1


if __name__ == "__main__":
    sys.exit(main())
