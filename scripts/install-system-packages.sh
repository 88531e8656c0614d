#!/usr/bin/env bash
# Install the Debian packages listed in system-packages.txt that are missing
# (fonts for rendering text in every script).  Needs root or sudo; without
# either it names what to install and stops.
set -euo pipefail
list="${1:-system-packages.txt}"
[ -f "$list" ] || exit 0
command -v dpkg-query >/dev/null 2>&1 || { echo "not a Debian system: install the packages in $list by hand" >&2; exit 0; }

missing=()
while read -r pkg; do
    pkg="${pkg%%#*}"; pkg="${pkg// /}"
    [ -n "$pkg" ] || continue
    # "a|b": any one of the alternatives will do (npm ships inside some
    # nodejs builds); the first is the one installed when none is.
    found=""
    for alt in ${pkg//|/ }; do
        dpkg-query -W -f='${Status}' "$alt" 2>/dev/null | grep -q "install ok installed" && found=1
    done
    [ -n "$found" ] || missing+=("${pkg%%|*}")
done < "$list"
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "missing system packages: ${missing[*]} (install them as root)" >&2; exit 1
fi
echo "installing system packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
