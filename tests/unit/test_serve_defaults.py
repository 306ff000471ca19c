"""How many web processes `orderdesk serve` starts when WEB_WORKERS is not set (bench/NOTES.md, stop 21)."""

import os

import pytest

from orderdesk.cli import default_web_workers


@pytest.mark.parametrize(("cores", "processes"), [(1, 2), (2, 2), (4, 4), (8, 8), (16, 8)])
def test_serve_starts_one_web_process_per_core_two_at_least_eight_at_most(monkeypatch, cores, processes):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert default_web_workers() == processes
