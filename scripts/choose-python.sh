#!/usr/bin/env bash
# Prints the Python the project's virtualenv is built from: the first candidate that is 3.11 or
# newer and can make a virtualenv with pip; python3 if none can (its own error then says why).
#
# The system's python3 comes first. Debian builds it with profile-guided and link-time
# optimisation, libpython linked into the executable; pyenv's default build, which often stands
# first on PATH, has neither (a shared libpython, no profile). On this project's two-core machine
# the same code ran the order lifecycle 10–30% faster on Debian's 3.11 than on pyenv's
# (bench/NOTES.md, stop 22). `make PYTHON=...` overrides the choice; PYTHON_CANDIDATES replaces
# the list looked through (the tests use it).
for candidate in ${PYTHON_CANDIDATES:-/usr/bin/python3 python3}; do
    if "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        command -v "$candidate"
        exit 0
    fi
done
echo python3
