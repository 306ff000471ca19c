"""Compare two source trees of the product on the served SQLite lifecycle, in the same minutes.

This VM's speed drifts by ±15% within minutes (bench/NOTES.md, stop 22), so two variants measured
one after the other are told apart only by effects larger than that. Here both run at once, each
`orderdesk serve` on its own database, and bursts of lifecycles go to one and then the other,
the order alternating by round. Each burst records its rate and the web processes' and the
worker's CPU per lifecycle; the medians of the rounds' ratios (B over A) compare the two. An A/A
(one tree twice) gave 1.008 for the web processes' CPU (stop 23): differences of 2–3% show. The
rate's rounds spread wider (0.75–1.34 in stop 24's runs), so a rate compares on 14 rounds or more
of `--burst 300`.

    git worktree add /tmp/before HEAD~1
    .venv/bin/python bench/compare.py /tmp/before/src src [--rounds 12] [--burst 150] [--clients 8]

A source tree is a directory that holds the `orderdesk` package; it is put first on each server's
PYTHONPATH. Both run on this checkout's virtualenv.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402

FIRST_PORT = 8940
METRICS = {"per_s": "lifecycles a second", "web_ms": "web processes' CPU, ms a lifecycle",
           "worker_ms": "the worker's CPU, ms a lifecycle"}


def source_tree(path: str) -> Path:
    tree = Path(path).resolve()
    if not (tree / "orderdesk" / "__init__.py").is_file():
        raise argparse.ArgumentTypeError(f"{path} holds no orderdesk package (give the directory above it, e.g. src)")
    return tree


def paired_ratios(a_rounds: list[dict], b_rounds: list[dict], metric: str) -> dict:
    """B over A round by round (a round's two bursts ran seconds apart); the median and
    the spread of those ratios."""
    ratios = [b[metric] / a[metric] for a, b in zip(a_rounds, b_rounds, strict=True)]
    return {"median": statistics.median(ratios), "low": min(ratios), "high": max(ratios)}


class Variant:
    """One source tree served on its own SQLite database, its cash desk open and its sessions signed in."""

    def __init__(self, tree: Path, port: int, clients: int):
        self.db = run.Database("sqlite")
        self.db.env["PYTHONPATH"] = str(tree)
        # its own sandbox acquirer: both servers run at once, and the default port is one
        self.db.env["YOOKASSA_API_URL"] = f"http://127.0.0.1:{port + 1}/v3"
        self.server = None
        self.rounds: list[dict] = []
        self.next_number = 0
        try:
            self.db.cli("migrate", "--verbosity", "0")
            self.server = self.db.serve(port)
            self.desk = run.open_cash_desk(self.db, port)
            self.sessions = [run.Session(port, run.LIFECYCLE_ADMIN) for _ in range(clients)]
        except BaseException:
            self.close()
            raise

    def burst(self, lifecycles: int) -> dict:
        server_cpu = run.ServerCPU(self.server)
        started = time.perf_counter()
        numbers = range(self.next_number, self.next_number + lifecycles)
        self.next_number += lifecycles
        run.lifecycles_with_receipts(self.db, self.sessions, self.desk, numbers)
        elapsed = time.perf_counter() - started
        run.wait_for_outbox(self.db)  # the burst's e-mails are its worker's work too
        web, worker = server_cpu.spent()
        return {"per_s": lifecycles / elapsed, "web_ms": web * 1000 / lifecycles, "worker_ms": worker * 1000 / lifecycles}

    def close(self) -> None:
        if self.server is not None:
            run.stop(self.server)
        self.db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=source_tree, help="source tree A (holds the orderdesk package)")
    parser.add_argument("b", type=source_tree, help="source tree B")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--burst", type=int, default=150, help="lifecycles a burst")
    parser.add_argument("--clients", type=int, default=run.LIFECYCLE_CLIENTS)
    args = parser.parse_args()
    variants: list[Variant] = []
    try:
        for i, tree in enumerate((args.a, args.b)):
            variants.append(Variant(tree, FIRST_PORT + 10 * i, args.clients))
        for variant in variants:
            variant.burst(args.burst)  # warm-up, not counted
        for r in range(args.rounds):
            for variant in variants if r % 2 == 0 else variants[::-1]:
                variant.rounds.append(variant.burst(args.burst))
            a, b = variants[0].rounds[-1], variants[1].rounds[-1]
            run.log(f"round {r + 1}/{args.rounds}: A {a['per_s']:.1f}/s web {a['web_ms']:.2f} worker "
                    f"{a['worker_ms']:.2f} ms | B {b['per_s']:.1f}/s web {b['web_ms']:.2f} worker {b['worker_ms']:.2f} ms")
        a_rounds, b_rounds = variants[0].rounds, variants[1].rounds
        for metric, label in METRICS.items():
            ratio = paired_ratios(a_rounds, b_rounds, metric)
            print(f"{label}: A {statistics.median(x[metric] for x in a_rounds):.2f}, "
                  f"B {statistics.median(x[metric] for x in b_rounds):.2f}; B/A median {ratio['median']:.3f} "
                  f"(rounds {ratio['low']:.3f}–{ratio['high']:.3f})")
    finally:
        for variant in variants:
            variant.close()


if __name__ == "__main__":
    main()
