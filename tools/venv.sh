#!/bin/sh
# Make sure .venv exists, works and holds what a task needs; rebuild it when it does not.
#
#   sh tools/venv.sh run   the daemon, the demo and the CLI (pip install -e .)
#   sh tools/venv.sh dev   that plus the test and lint tools (pip install -e '.[dev]')
#
# A virtual environment whose interpreter is gone or older than 3.11, or whose last install
# failed, is removed and made anew, and the script says why. Environment: PYTHON (the
# interpreter to build from, default python3), VENV (default .venv).
set -eu

kind=${1:-dev}
case $kind in
run) extra="" ;;
dev) extra="[dev]" ;;
*)
    echo "usage: $0 run|dev" >&2
    exit 2
    ;;
esac

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
stamp="$VENV/.installed-$kind"
broken="$VENV/.install-failed"

say() { echo "venv: $*" >&2; }

# pip with its progress shown, less the lines about package indexes that do not exist here;
# the exit status is pip's.
pip() {
    exec 3>&1
    status=$({ {
        rc=0
        "$VENV/bin/python" -m pip --disable-pip-version-check "$@" 2>&1 || rc=$?
        echo "$rc" >&4
    } |
        grep -v "is ignored: it is neither a file nor a directory" >&3 || true; } 4>&1)
    exec 3>&-
    return "$status"
}

# True when interpreter $1 runs and is at least Python 3.11.
new_enough() {
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

pick_python() {
    for candidate in "$PYTHON" python3.13 python3.12 python3.11; do
        if command -v "$candidate" >/dev/null 2>&1 && new_enough "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
    found=$("$PYTHON" --version 2>&1 || echo "no $PYTHON")
    say "EMS needs Python 3.11 or newer; $PYTHON is: $found."
    say "Install python3.11 (or newer) or name one: make PYTHON=/usr/bin/python3.12 ..."
    return 1
}

reason=""
if [ -e "$VENV" ]; then
    if [ ! -x "$VENV/bin/python" ]; then
        reason="$VENV/bin/python is missing"
    elif ! "$VENV/bin/python" -c 'pass' 2>/dev/null; then
        reason="its interpreter no longer runs (was the system Python upgraded?)"
    elif ! new_enough "$VENV/bin/python"; then
        reason="it was made with $("$VENV/bin/python" --version 2>&1); EMS needs 3.11 or newer"
    elif [ -e "$broken" ]; then
        reason="the last install into it failed"
    elif ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        reason="it has no working pip"
    fi
fi
if [ -n "$reason" ]; then
    say "rebuilding $VENV: $reason"
    rm -rf "$VENV"
fi

if [ ! -e "$VENV" ]; then
    py=$(pick_python)
    say "creating $VENV with $py ($("$py" --version 2>&1))"
    "$py" -m venv "$VENV"
fi

# Up to date: installed for this kind after the last change of pyproject.toml.
if [ -e "$stamp" ] && [ ! pyproject.toml -nt "$stamp" ]; then
    exit 0
fi

case $kind in
run) say "installing EMS and what it needs to run into $VENV (about 120 MB) ..." ;;
dev) say "installing EMS with its test and lint tools into $VENV (about 600 MB) ..." ;;
esac
touch "$broken"
if ! pip install --progress-bar on --upgrade pip; then
    say "upgrading pip in $VENV failed; $VENV will be rebuilt on the next run"
    exit 1
fi
if ! pip install --progress-bar on -e ".$extra"; then
    say "installing into $VENV failed (see above); it will be rebuilt on the next run"
    exit 1
fi
check="import emsctl, statemachine, sqlalchemy, flask"
[ "$kind" = dev ] && check="$check, pytest, xdist, ruff, mypy, playwright"
if ! "$VENV/bin/python" -c "$check"; then
    say "$VENV is incomplete after the install; it will be rebuilt on the next run"
    exit 1
fi
rm -f "$broken"
touch "$stamp"
say "$VENV ready ($kind)"
