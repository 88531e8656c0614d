"""Import every actor module (``dramatiq pipeline.workers.all`` serves all queues)."""

import importlib

from pipeline.workers import runtime  # noqa: F401  (the broker before any actor)
from t2m.worker_modules import QUEUE_MODULES

for _modules in QUEUE_MODULES.values():
    for _module in _modules:
        importlib.import_module(_module)
