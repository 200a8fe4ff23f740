"""The ONNX graph of a BERT sentence encoder, written with the `onnx` helper API from NumPy
weights: embeddings, encoder layers, mean pooling and L2 normalisation, all inside the graph.
Used once, when the local embedding model is built (tzurot/memory/local_model.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tzurot.memory.local_model import MAX_TOKENS, OPSET, LocalModelError

# Added to the attention scores of padding: exp() of it is 0 in float32.
MASKED_SCORE = -10000.0


class _GraphBuilder:
    """Collects the nodes and initializers of the graph, naming every intermediate value."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0
        self._scalars: set[str] = set()

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def scalar(self, value: float, dtype: type[np.generic] = np.float32) -> str:
        """A 0-d constant, made once however often it is used."""
        name = f"{np.dtype(dtype).name}_{value!r}"
        if name not in self._scalars:
            self._scalars.add(self.const(name, np.array(value, dtype)))
        return name

    def axes(self, *axes: int) -> str:
        """A 1-d int64 constant of axes (for Unsqueeze and the Reduce ops)."""
        name = "axes_" + "_".join(str(a) for a in axes)
        if name not in self._scalars:
            self._scalars.add(self.const(name, np.array(axes, np.int64)))
        return name

    def weight(self, name: str, *, transpose: bool = False) -> str:
        """A float32 initializer from the checkpoint (Linear weights transposed for MatMul)."""
        try:
            value = self.weights[name]
        except KeyError:
            raise LocalModelError(f"model.safetensors has no tensor {name}") from None
        value = value.T if transpose else value
        return self.const(name, np.ascontiguousarray(value, dtype=np.float32))

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        self._count += 1
        out = f"{op_type.lower()}_{self._count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def linear(self, x: str, prefix: str) -> str:
        weight = self.weight(f"{prefix}.weight", transpose=True)
        return self.op("Add", self.op("MatMul", x, weight), self.weight(f"{prefix}.bias"))

    def layer_norm(self, x: str, prefix: str, eps: float) -> str:
        return self.op(
            "LayerNormalization",
            x,
            self.weight(f"{prefix}.weight"),
            self.weight(f"{prefix}.bias"),
            axis=-1,
            epsilon=eps,
        )


def _embeddings(g: _GraphBuilder, eps: float) -> str:
    """word + position + token type (always type 0: one sentence per input), then LayerNorm."""
    words = g.op("Gather", g.weight("embeddings.word_embeddings.weight"), "input_ids")
    one, zero = g.scalar(1, np.int64), g.scalar(0, np.int64)
    seq_len = g.op("Gather", g.op("Shape", "input_ids"), one, axis=0)
    positions = g.op("Range", zero, seq_len, one)
    position_vectors = g.op("Gather", g.weight("embeddings.position_embeddings.weight"), positions)
    token_type = g.weights.get("embeddings.token_type_embeddings.weight")
    summed = g.op("Add", words, position_vectors)
    if token_type is not None:
        summed = g.op("Add", summed, g.const("token_type_0", token_type[0].astype(np.float32)))
    return g.layer_norm(summed, "embeddings.LayerNorm", eps)


def _attention_bias(g: _GraphBuilder) -> str:
    """[batch, 1, 1, seq]: 0 for real tokens, a large negative number for padding."""
    mask = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)
    bias = g.op("Mul", g.op("Sub", g.scalar(1.0), mask), g.scalar(MASKED_SCORE))
    return g.op("Unsqueeze", bias, g.axes(1, 2))


def _self_attention(g: _GraphBuilder, x: str, bias: str, prefix: str, heads: int) -> str:
    """Multi-head self-attention of one layer: [batch, seq, hidden] -> same."""
    hidden = g.weights[f"{prefix}.query.weight"].shape[0]
    head_dim = hidden // heads
    split = g.const(f"{prefix}.split_shape", np.array([0, 0, heads, head_dim], np.int64))

    def heads_of(name: str, perm: list[int]) -> str:
        return g.op("Transpose", g.op("Reshape", g.linear(x, f"{prefix}.{name}"), split), perm=perm)

    query = heads_of("query", [0, 2, 1, 3])  # [batch, heads, seq, head_dim]
    key = heads_of("key", [0, 2, 3, 1])  # [batch, heads, head_dim, seq]
    value = heads_of("value", [0, 2, 1, 3])
    scale = g.scalar(1.0 / math.sqrt(head_dim))
    scores = g.op("Add", g.op("Mul", g.op("MatMul", query, key), scale), bias)
    context = g.op("MatMul", g.op("Softmax", scores, axis=-1), value)
    merged = g.const(f"{prefix}.merge_shape", np.array([0, 0, hidden], np.int64))
    return g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), merged)


def _gelu(g: _GraphBuilder, x: str) -> str:
    """The exact GELU of BERT: 0.5 * x * (1 + erf(x / sqrt(2)))."""
    erf = g.op("Erf", g.op("Div", x, g.scalar(math.sqrt(2.0))))
    return g.op("Mul", g.op("Mul", x, g.op("Add", erf, g.scalar(1.0))), g.scalar(0.5))


def _encoder_layer(g: _GraphBuilder, x: str, bias: str, index: int, config: dict[str, Any]) -> str:
    """One post-LayerNorm transformer layer."""
    prefix = f"encoder.layer.{index}"
    eps = float(config.get("layer_norm_eps", 1e-12))
    heads = int(config["num_attention_heads"])
    attended = _self_attention(g, x, bias, f"{prefix}.attention.self", heads)
    attended = g.linear(attended, f"{prefix}.attention.output.dense")
    x = g.layer_norm(g.op("Add", attended, x), f"{prefix}.attention.output.LayerNorm", eps)
    inner = _gelu(g, g.linear(x, f"{prefix}.intermediate.dense"))
    out = g.linear(inner, f"{prefix}.output.dense")
    return g.layer_norm(g.op("Add", out, x), f"{prefix}.output.LayerNorm", eps)


def _mean_pool_normalised(g: _GraphBuilder, x: str) -> str:
    """Mean of the real tokens' vectors, then L2 normalised: [batch, hidden]."""
    mask = g.op("Unsqueeze", g.op("Cast", "attention_mask", to=TensorProto.FLOAT), g.axes(-1))
    summed = g.op("ReduceSum", g.op("Mul", x, mask), g.axes(1), keepdims=0)
    counts = g.op("ReduceSum", mask, g.axes(1), keepdims=0)
    mean = g.op("Div", summed, g.op("Max", counts, g.scalar(1e-9)))
    norm = g.op("ReduceL2", mean, g.axes(1), keepdims=1)
    return g.op("Div", mean, g.op("Max", norm, g.scalar(1e-12)))


def write_onnx(config: dict[str, Any], weights: dict[str, np.ndarray], out_path: Path) -> None:
    """Write the ONNX graph of a BERT sentence encoder (its config.json and weights) to
    `out_path`: inputs input_ids and attention_mask (int64 [batch, seq]), output embeddings
    (float32 [batch, hidden], L2 normalised)."""
    g = _GraphBuilder(weights)
    x = _embeddings(g, float(config.get("layer_norm_eps", 1e-12)))
    bias = _attention_bias(g)
    for index in range(int(config["num_hidden_layers"])):
        x = _encoder_layer(g, x, bias, index, config)
    pooled = _mean_pool_normalised(g, x)
    g.nodes.append(helper.make_node("Identity", [pooled], ["embeddings"]))
    graph = helper.make_graph(
        g.nodes,
        "sentence_encoder",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [
            helper.make_tensor_value_info(
                "embeddings", TensorProto.FLOAT, ["batch", int(config["hidden_size"])]
            )
        ],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    max_tokens = min(MAX_TOKENS, int(config.get("max_position_embeddings", MAX_TOKENS)))
    helper.set_model_props(model, {"max_tokens": str(max_tokens)})
    onnx.checker.check_model(model)
    onnx.save(model, str(out_path))
