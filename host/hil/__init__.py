"""The hardware-in-the-loop suite: checks, board targets, report and the tests themselves.

Run it with ``sonobridge hil [PORT]`` or ``pytest --pyargs sonobridge.hil``; see docs/hil.md.
Importing this package imports nothing else: :mod:`sonobridge.hil.plugin` is loaded by every
pytest run of the environment.
"""
