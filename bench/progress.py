"""The progress bar of the bench's bulk loads, on stderr."""

import sys
import time


def progress(done: int, total: int, started: float, unit: str = "rows") -> None:
    width = 40
    filled = int(width * done / total)
    rate = done / max(time.perf_counter() - started, 1e-9)
    sys.stderr.write(f"  loading [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} ({rate:,.0f} {unit}/s)\n")
    sys.stderr.flush()
