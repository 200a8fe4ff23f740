"""Infrastructure: the Redis connection and the embedded redis-server."""

from tzurot.infra.embedded_redis import EmbeddedRedis, RedisServerMissing
from tzurot.infra.redis_client import RedisClient, as_text, connect, ping

__all__ = ["EmbeddedRedis", "RedisClient", "RedisServerMissing", "as_text", "connect", "ping"]
