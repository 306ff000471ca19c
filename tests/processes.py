"""Helpers for tests that run several things at once: threads with their own database
connections, and real processes read from /proc."""

import threading
from pathlib import Path

from django.db import connection


def at_once(calls: int, call, *, timeout: float = 60) -> list:
    """Run call(index) in `calls` threads released together; each result, or the exception raised."""
    barrier = threading.Barrier(calls)
    results: list = [None] * calls

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=20)
            results[index] = call(index)
        except Exception as exc:  # a thread's failure must show in the assertion, not vanish
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads)
    return results


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")
