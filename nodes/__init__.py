"""Bazar's three services (catalog, order, front-end) and the Qt-free control layer.

Run one service as its own process with ``python -m nodes catalog|order|frontend --help``.
"""
