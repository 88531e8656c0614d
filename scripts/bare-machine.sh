#!/usr/bin/env bash
# Run a command as on a bare machine: in a fresh network namespace with only
# loopback, where nothing of this host listens (no PostgreSQL, no Redis, no
# other T2M), so the zero-setup path is what runs.  Root uses a plain network
# namespace; anyone else an unprivileged user namespace with one.
set -euo pipefail
[ "$#" -gt 0 ] || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }
if [ "$(id -u)" -eq 0 ]; then userns=(); else userns=(--map-root-user); fi
exec unshare "${userns[@]}" --net -- bash -c 'ip link set lo up && exec "$@"' bare-machine "$@"
