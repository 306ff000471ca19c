"""scripts/choose-python.sh: the interpreter the Makefile builds .venv from."""

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "choose-python.sh"


def choose(*candidates: str) -> str:
    env = {**os.environ, "PYTHON_CANDIDATES": " ".join(candidates)}
    return subprocess.run([SCRIPT], env=env, check=True, capture_output=True, text=True).stdout.strip()


def fake_python(tmp_path: Path, name: str, version: tuple[int, int], has_ensurepip: bool = True) -> str:
    """This interpreter behind a wrapper that makes it report `version` and, if asked, lack
    ensurepip (as Debian's python3 does without python3-venv); the script's own check runs in it."""
    prelude = f"import sys; sys.version_info = {version!r}"
    if not has_ensurepip:
        prelude += "; sys.modules['ensurepip'] = None"
    path = tmp_path / name
    # The script calls `<candidate> -c <check>`; the wrapper runs the check after the prelude.
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -c "{prelude}; exec(sys.argv[2])" "$@"\n')
    path.chmod(0o755)
    return str(path)


def test_the_first_candidate_that_is_3_11_with_venv_is_chosen(tmp_path):
    old = fake_python(tmp_path, "python3.10", (3, 10))
    new = fake_python(tmp_path, "python3.12", (3, 12))
    assert choose(old, new) == new


def test_a_python_that_cannot_make_a_virtualenv_with_pip_is_passed_over(tmp_path):
    no_ensurepip = fake_python(tmp_path, "system-python", (3, 11), has_ensurepip=False)
    usable = fake_python(tmp_path, "python3.11", (3, 11))
    assert choose(no_ensurepip, usable) == usable


def test_with_no_usable_candidate_python3_is_left_to_say_what_is_wrong(tmp_path):
    assert choose(fake_python(tmp_path, "python3.9", (3, 9)), str(tmp_path / "missing")) == "python3"


def test_the_check_accepts_the_interpreter_running_the_tests():
    # The real check, not a stand-in: this interpreter is 3.11+ and built the test venv's base.
    base = Path(sys._base_executable)
    assert choose(str(base)) == str(base)
