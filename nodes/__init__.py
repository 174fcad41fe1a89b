"""Bazar's three services (catalog, order, front-end) and the Qt-free control layer.

Run one service as its own process with ``python -m nodes catalog|order|frontend --help``.
"""

#: Bazar's version, as a run file records it (docs/runs.md).
__version__ = "0.5.0"
