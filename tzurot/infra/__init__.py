"""Infrastructure: the Redis connection and the embedded redis-server."""

from tzurot.infra.embedded_redis import EmbeddedRedis, RedisServerMissing
from tzurot.infra.redis_client import RedisClient, connect, ping

__all__ = ["EmbeddedRedis", "RedisClient", "RedisServerMissing", "connect", "ping"]
