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

# A memory recall is one small matrix-vector product. Above ~1,000 rows OpenBLAS splits it over
# every core, and its worker threads then busy-wait ~0.1 s after each call: ~100 ms of CPU per
# recall on an idle bot, taken from Redis and the event loop (bench.memory_path). One thread
# does the product in under a millisecond. Set before NumPy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
