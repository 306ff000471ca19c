"""bench/compare.py, the side-by-side A/B of two source trees: what it accepts as a tree, and how it
pairs the rounds of the two variants."""

import argparse
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from compare import paired_ratios, source_tree  # noqa: E402


def test_a_source_tree_is_the_directory_that_holds_the_orderdesk_package(tmp_path):
    assert source_tree(str(ROOT / "src")) == ROOT / "src"
    with pytest.raises(argparse.ArgumentTypeError, match="holds no orderdesk package"):
        source_tree(str(ROOT / "src" / "orderdesk"))  # the package itself, one level too deep
    with pytest.raises(argparse.ArgumentTypeError):
        source_tree(str(tmp_path))


def test_rounds_are_compared_pair_by_pair_not_by_the_ratio_of_their_medians():
    # the VM slows in round 2 for both: pairing keeps B's 10% less CPU visible in every round
    a = [{"web_ms": 10.0}, {"web_ms": 20.0}, {"web_ms": 10.0}]
    b = [{"web_ms": 9.0}, {"web_ms": 18.0}, {"web_ms": 9.5}]
    ratio = paired_ratios(a, b, "web_ms")
    assert ratio == {"median": pytest.approx(0.9), "low": pytest.approx(0.9), "high": pytest.approx(0.95)}


def test_rounds_missing_on_one_side_are_an_error_not_a_shorter_comparison():
    with pytest.raises(ValueError):
        paired_ratios([{"web_ms": 1.0}, {"web_ms": 1.0}], [{"web_ms": 1.0}], "web_ms")
