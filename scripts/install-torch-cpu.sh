#!/usr/bin/env bash
# Install the CPU build of torch 2.13.0 into the given virtualenv's pip.
# The +cpu local version pins the build: pip can never pick a CUDA wheel.
# Wheels found through pip's own configuration (find-links, mirrors) win;
# otherwise the PyTorch CPU index is used.
set -euo pipefail
pip="$1"
"$pip" show torch 2>/dev/null | grep -q '^Version: 2.13.0+cpu$' && exit 0
"$pip" install -q "torch==2.13.0+cpu" \
    || "$pip" install -q "torch==2.13.0+cpu" --index-url https://download.pytorch.org/whl/cpu \
        --extra-index-url https://pypi.org/simple
