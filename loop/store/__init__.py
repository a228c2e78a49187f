"""The Redis store: Loop's domain services over Redis hashes and sorted-set indexes."""

from loop.store.base import RedisStore, connect

__all__ = ["RedisStore", "connect"]
