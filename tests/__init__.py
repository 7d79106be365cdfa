"""sonobridge's tests, one package per layer; helpers are imported relatively.

For example ``from .record_fixtures import wait_until``: no sys.path entries are needed.
"""
