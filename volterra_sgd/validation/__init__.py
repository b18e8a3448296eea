"""Validation scripts: each compares a part of volterra_sgd with an independent reference.

Every script runs standalone (``python -m volterra_sgd.validation.<name>``, writing to
``validation/out`` by default) and is collected by ``volterra-sgd validate``.  The scripts ship
with the package so that the report can be regenerated from a plain ``pip install``; the
repository's top-level ``validation`` directory is a link to this one.
"""
