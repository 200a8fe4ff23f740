"""Turning text into vectors: the local model (in a thread) or any litellm embedding model.

Both give float32 rows, L2-normalised, one per text, and both batch: the local embedder
gathers the texts that arrive while it is busy into the next run of the model (so ten
concurrent recalls cost one model run, not ten), and the litellm embedder sends a list per call.
Neither ever runs on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import SecretStr

from tzurot.logs import get_logger

log = get_logger(__name__)

LOCAL = "local"
LOCAL_MODEL_NAME = "local/all-minilm-l6-v2"
MAX_BATCH = 32
MAX_EMBED_CHARS = 8_000  # longer texts are cut (the model reads 256 tokens anyway)


class EmbeddingError(Exception):
    """Embedding failed; the message is safe to log (no key, no URL)."""


class Embedder(Protocol):
    @property
    def name(self) -> str:
        """What a memory scope records as its model: vectors of two models never mix."""
        ...

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, rows L2-normalised."""
        ...

    async def close(self) -> None: ...


def normalised(vectors: np.ndarray) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or not np.all(np.isfinite(matrix)):
        raise EmbeddingError("the embedding model returned something that is not vectors")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    result: np.ndarray = matrix / norms
    return result


class LocalEmbedder:
    """EMBEDDING_MODEL=local: all-MiniLM-L6-v2 on ONNX Runtime, built once into DATA_DIR."""

    def __init__(self, models_dir: Path, *, threads: int = 1) -> None:
        self._models_dir = models_dir
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="embed")
        self._model: Any = None
        self._loading: asyncio.Task[Any] | None = None
        self._pending: list[tuple[str, asyncio.Future[np.ndarray]]] = []
        self._runner: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return LOCAL_MODEL_NAME

    async def warm_up(self) -> None:
        """Fetch and build the model if need be, and load it (seconds; once per process)."""
        await self._loaded()

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            model = await self._loaded()
            return np.zeros((0, int(model.dim)), dtype=np.float32)
        loop = asyncio.get_running_loop()
        futures = []
        for text in texts:
            future: asyncio.Future[np.ndarray] = loop.create_future()
            self._pending.append((text[:MAX_EMBED_CHARS], future))
            futures.append(future)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain(), name="local-embedder")
        rows = await asyncio.gather(*futures)
        return np.stack(rows)

    async def close(self) -> None:
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _drain(self) -> None:
        """Run the model over whatever is waiting, MAX_BATCH texts at a time, until nothing is."""
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                model = await self._loaded()
                loop = asyncio.get_running_loop()
                texts = [text for text, _ in batch]
                vectors = await loop.run_in_executor(self._executor, model.embed, texts)
                matrix = normalised(vectors)
            except Exception as error:
                failure = (
                    error
                    if isinstance(error, EmbeddingError)
                    else EmbeddingError(
                        f"the local embedding model failed ({type(error).__name__})"
                    )
                )
                for _, future in batch:
                    if not future.done():
                        future.set_exception(failure)
                continue
            for (_, future), row in zip(batch, matrix, strict=True):
                if not future.done():
                    future.set_result(row)

    async def _loaded(self) -> Any:
        if self._model is not None:
            return self._model
        if self._loading is None or (self._loading.done() and self._loading.exception()):
            self._loading = asyncio.create_task(self._load(), name="local-embedder-load")
        self._model = await asyncio.shield(self._loading)
        return self._model

    async def _load(self) -> Any:
        from tzurot.memory.local_model import LocalEmbeddingModel, ensure_local_model

        loop = asyncio.get_running_loop()

        def load() -> Any:
            return LocalEmbeddingModel.load(ensure_local_model(self._models_dir))

        try:
            model = await loop.run_in_executor(self._executor, load)
        except Exception as error:
            log.error("the local embedding model could not be loaded", error=str(error)[:300])
            raise EmbeddingError(
                "the local embedding model could not be loaded; see the log"
            ) from None
        log.info("local embedding model loaded", dim=model.dim)
        return model


class LiteLLMEmbedder:
    """Any litellm embedding model (`openai/text-embedding-3-small`, ...). With LLM_API_BASE
    set, `openai/...` models go there, with LLM_API_KEY."""

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key: SecretStr | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._model = model
        self._api_base = api_base if model.startswith("openai/") else None
        self._api_key = api_key if self._api_base else None
        self._timeout = timeout

    @property
    def name(self) -> str:
        return self._model

    async def close(self) -> None:
        return None

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        import litellm

        from tzurot.ai._litellm import configure_litellm

        configure_litellm()
        rows: list[list[float]] = []
        for start in range(0, len(texts), MAX_BATCH):
            chunk = [text[:MAX_EMBED_CHARS] or " " for text in texts[start : start + MAX_BATCH]]
            kwargs: dict[str, Any] = {"model": self._model, "input": chunk,
                                      "timeout": self._timeout}  # fmt: skip
            if self._api_base:
                kwargs["api_base"] = self._api_base
            if self._api_key is not None:
                kwargs["api_key"] = self._api_key.get_secret_value()
            try:
                response = await litellm.aembedding(**kwargs)
                data = sorted(response.data, key=lambda item: _field(item, "index"))
                rows.extend([list(_field(item, "embedding")) for item in data])
            except Exception as error:
                raise EmbeddingError(
                    f"the embedding model {self._model} failed ({type(error).__name__})"
                ) from None
            if len(rows) != min(len(texts), start + MAX_BATCH):
                raise EmbeddingError(f"the embedding model {self._model} lost some texts")
        return normalised(np.asarray(rows, dtype=np.float32))


def _field(item: Any, name: str) -> Any:
    return item[name] if isinstance(item, dict) else getattr(item, name)


def embedder_from_settings(settings: Any) -> Embedder:
    """EMBEDDING_MODEL: `local` (the default) or a litellm embedding model."""
    model = str(getattr(settings, "embedding_model", LOCAL) or LOCAL).strip()
    if model == LOCAL:
        return LocalEmbedder(Path(settings.models_path))
    return LiteLLMEmbedder(model, api_base=settings.llm_api_base, api_key=settings.llm_api_key)
