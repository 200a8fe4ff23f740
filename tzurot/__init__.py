"""Tzurot: a Discord bot that hosts AI personalities, in one asyncio process."""

import os

# litellm fetches a model cost map from the internet when it is imported unless told not to.
# This must happen before anything imports litellm, so it lives at the package root.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Nor should it fetch tokenizers, beta headers or anything else at run time.
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

__version__ = "0.1.0"
