"""The ``t2m`` command-line client: talks HTTP to a T2M server (stdlib only)."""
