"""``python -m t2m.cli``: the same as the ``t2m`` command."""

import sys

from t2m.cli.main import main

sys.exit(main())
