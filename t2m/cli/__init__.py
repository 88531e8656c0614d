"""The ``t2m`` command: the composition roots (serve, worker, scheduler, dev,
maintenance, ...), the one part of the kernel allowed to import every layer.

Each command imports what it wires inside its own function, so ``t2m --help``
and the client commands load no server code.
"""

from t2m.cli.main import main

__all__ = ["main"]
