#!/usr/bin/env bash
# Regenerate the hash-pinned lock files from setup.cfg (`make lock`).
#
#   requirements.lock       every dependency plus the test and dev extras
#                           (what `make dev` / `make test` install)
#   requirements-prod.lock  install_requires only (the Dockerfile), pinned to
#                           the same versions as requirements.lock
#
# Both also pin the build backend (setuptools, wheel) so T2M itself is built
# with --no-build-isolation from hashed packages.
#
# Deterministic: uv resolves for one target (CPython 3.11, manylinux_2_28
# x86_64) whatever machine runs it, writes sorted output with no timestamp or
# path, and keeps every version already in the lock unless setup.cfg no
# longer admits it, so re-running after adding a dependency only adds that
# dependency and what it needs.  `scripts/lock.sh --upgrade` moves every
# package to its newest admitted version.
#
# torch is never in a lock: scripts/install-torch-cpu.sh installs the CPU
# build first.  Resolving against PyPI's torch would pull its CUDA
# dependencies (nvidia-*, triton) into the lock, so the CPU wheel is fetched
# through pip's own configuration (as the install script does) and the
# resolver is told to use that build; its own dependencies (sympy, networkx,
# ...) are locked, torch itself is left out.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${VENV:-.venv}"
uv="$venv/bin/uv"
pip="$venv/bin/pip"
torch_version="2.13.0+cpu"
if [ ! -x "$uv" ]; then
    # uv is in the dev extra; install the locked build (hash-checked) so a
    # stale install (setup.cfg ahead of the lock) can still re-lock.
    pinned="$(mktemp)"
    awk '/^uv==/ {on=1} on && !/^ *#/ {print} on && !/\\$/ {exit}' requirements.lock >"$pinned" 2>/dev/null || true
    if [ -s "$pinned" ]; then
        "$pip" install -q --require-hashes -r "$pinned"
    else
        "$pip" install -q "uv==0.13.8"
    fi
    rm -f "$pinned"
fi

upgrade=()
if [ "${1:-}" = "--upgrade" ]; then upgrade=(--upgrade); fi

wheels="${XDG_CACHE_HOME:-$HOME/.cache}/t2m-lock/wheels"
mkdir -p "$wheels"
if ! ls "$wheels"/torch-"$torch_version"-*.whl >/dev/null 2>&1; then
    "$pip" download -q --no-deps --only-binary :all: --python-version 3.11 \
        --platform manylinux_2_28_x86_64 -d "$wheels" "torch==$torch_version"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "torch==$torch_version" >"$work/overrides.txt"
# The build backend of pyproject.toml, locked like everything else.
printf 'setuptools>=68\nwheel\n' >"$work/build.in"

compile() {
    "$uv" pip compile --quiet --generate-hashes --no-config \
        --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
        --override "$work/overrides.txt" --find-links "$wheels" \
        --no-emit-package torch --custom-compile-command "make lock" \
        "$@"
}

compile "${upgrade[@]}" --extra test --extra dev \
    setup.cfg "$work/build.in" -o requirements.lock
# Same versions as the full lock: the image runs what the tests ran.
compile --constraint requirements.lock setup.cfg "$work/build.in" \
    -o requirements-prod.lock

# The input files are temporary: drop their paths from the "# via" notes so
# the output does not depend on where mktemp put them.
sed -i "s|-r $work/build.in|build backend (pyproject.toml)|" \
    requirements.lock requirements-prod.lock

if grep -Eiq '^(torch|nvidia-|triton)' requirements.lock requirements-prod.lock; then
    echo "lock: a CUDA/torch package slipped into a lock file" >&2
    exit 1
fi
echo "lock: wrote requirements.lock and requirements-prod.lock"
