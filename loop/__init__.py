"""Loop: the work queue AI coding agents pull from."""

__version__ = "0.1.0"
