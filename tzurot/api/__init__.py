"""The internal HTTP API."""

from tzurot.api.server import ApiServer, HealthProbe

__all__ = ["ApiServer", "HealthProbe"]
