"""Tzurot: a Discord bot that hosts AI personalities, in one asyncio process."""

import os

# litellm fetches a model cost map from the internet when it is imported unless told not to.
# This must happen before anything imports litellm, so it lives at the package root.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Nor should it fetch tokenizers, beta headers or anything else at run time.
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
# litellm's shared aiohttp pool defaults to 500 connections per host, which queues (and then
# times out) generations beyond that; WORKER_CONCURRENCY is the real bound on calls in flight.
os.environ.setdefault("AIOHTTP_CONNECTOR_LIMIT", "20000")
os.environ.setdefault("AIOHTTP_CONNECTOR_LIMIT_PER_HOST", "0")

__version__ = "0.1.0"
