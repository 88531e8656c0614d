"""Moved to :mod:`t2m.broker`; kept so imports of the old path keep working."""

from t2m.broker import build_broker

__all__ = ["build_broker"]
