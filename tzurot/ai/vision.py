"""Whether a model takes images, as litellm's model table says (unknown models: no)."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=512)
def supports_vision(model: str) -> bool:
    import litellm

    from tzurot.ai._litellm import configure_litellm

    configure_litellm()
    try:
        return bool(litellm.supports_vision(model=model))
    except Exception:
        return False
