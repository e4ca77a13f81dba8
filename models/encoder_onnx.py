"""all-MiniLM-L6-v2 run by onnxruntime: the same network as `dialog.nlu.embed`'s numpy encoder, as an
ONNX graph built here from the package's safetensors weights (the `onnx` package's helper API; no
torch, no export, nothing downloaded).

Variants: `onnx` (float32: the numpy encoder's vectors to float rounding) and `onnx-int8` (the
weight matrices quantized to int8 (7-bit range) per output column, activations quantized per call:
`onnxruntime.quantization.quantize_dynamic`, MatMul with constant weights only; the word, position
and token-type embeddings and every LayerNorm stay float32). One utterance runs on one thread
(`intra_op_num_threads=1`); a session is shared by every call (onnxruntime's `run` is thread-safe).

The built model is cached as `<variant>-g<GRAPH_VERSION>-<weights crc32>-<size>.onnx` under the
cache directory (IVR_ENCODER_CACHE, else $XDG_CACHE_HOME/ivr/encoder, else ~/.cache/ivr/encoder),
with a `.json` beside it holding the file's sha256: written to temporary files and renamed, so a
reader sees a whole file or none. A model whose hash does not match, or that onnxruntime cannot
load, is rebuilt. Building takes a few seconds (the int8 variant: quantizing); loading from the
cache well under one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from models.atomicfile import atomic_write
from models.errors import ModelMissingError

GRAPH_VERSION = 1
"""Bumped whenever the graph built here changes, so older cached models are not used."""
VARIANTS = ("onnx-int8", "onnx")
CACHE_ENV = "IVR_ENCODER_CACHE"
OPSET = 18
IR_VERSION = 8
MASK_BIAS = -1e9
INSTALL_HINT = "pip install onnx onnxruntime"
log = logging.getLogger(__name__)
_build_lock = threading.Lock()


def runtime_available() -> bool:
    """Whether onnxruntime can be imported (building a model also needs `onnx`)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = Path(os.environ["XDG_CACHE_HOME"]) if os.environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "ivr" / "encoder"


def cache_key(archive: Path, variant: str) -> str:
    """Names the cached model after what it was built from: the variant, the graph version and the
    weights (their CRC-32 and size in the zip, read without decompressing them)."""
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("model.safetensors")
    return f"{variant}-g{GRAPH_VERSION}-{info.CRC:08x}-{info.file_size}"


# --- the graph


def build_model(weights: dict[str, np.ndarray], config: dict[str, Any]) -> Any:
    """The float32 ONNX model: inputs `input_ids` and `attention_mask` (int64 [batch x length]),
    output `sentence_embedding` (float32 [batch x hidden], mean-pooled over the mask, L2-normalized)."""
    from onnx import TensorProto, helper, numpy_helper

    heads = int(config["num_attention_heads"])
    dim = int(config["hidden_size"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    head_dim = dim // heads
    w = {name: np.asarray(array, dtype=np.float32) for name, array in weights.items()
         if name.startswith(("embeddings.", "encoder."))}
    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def linear(x: str, prefix: str, out: str, scale: float = 1.0) -> str:
        weight = const(prefix + ".weight", w[prefix + ".weight"].T * np.float32(scale))
        bias = const(prefix + ".bias", w[prefix + ".bias"] * np.float32(scale))
        return node("Add", [node("MatMul", [x, weight], out + "_mm"), bias], out)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        return node("LayerNormalization", [x, const(prefix + ".weight", w[prefix + ".weight"]),
                                           const(prefix + ".bias", w[prefix + ".bias"])],
                    out, axis=-1, epsilon=eps)

    # Embeddings: word + position + token type 0 (one segment), then LayerNorm.
    const("word_embeddings", w["embeddings.word_embeddings.weight"])
    const("position_type_embeddings", w["embeddings.position_embeddings.weight"]
          + w["embeddings.token_type_embeddings.weight"][0])
    const("zero", np.array([0], dtype=np.int64))
    const("axis0", np.array([0], dtype=np.int64))
    const("axis1", np.array([1], dtype=np.int64))
    const("axis_last", np.array([-1], dtype=np.int64))
    const("one", np.array(1.0, dtype=np.float32))
    const("mask_bias", np.array(MASK_BIAS, dtype=np.float32))
    const("tiny", np.array(1e-12, dtype=np.float32))
    const("heads_shape", np.array([0, 0, heads, head_dim], dtype=np.int64))
    const("hidden_shape", np.array([0, 0, dim], dtype=np.int64))
    const("sqrt_half", np.array(0.7071067811865476, dtype=np.float32))
    const("half", np.array(0.5, dtype=np.float32))
    length = node("Shape", ["input_ids"], "length", start=1, end=2)
    positions = node("Slice", ["position_type_embeddings", "zero", length, "axis0"], "positions")
    words = node("Gather", ["word_embeddings", "input_ids"], "words", axis=0)
    x = layer_norm(node("Add", [words, positions], "embedded"), "embeddings.LayerNorm", "x0")
    mask = node("Cast", ["attention_mask"], "mask", to=TensorProto.FLOAT)
    # Additive attention bias [batch x 1 x 1 x length]: 0 on tokens, MASK_BIAS on padding.
    pad = node("Sub", ["one", mask], "pad")
    bias4 = node("Unsqueeze", [node("Mul", [pad, "mask_bias"], "pad_bias"), "axis1"], "pad_bias3")
    attn_bias = node("Unsqueeze", [bias4, "axis1"], "attn_bias")
    scale = 1.0 / float(np.sqrt(head_dim))
    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        # The 1/sqrt(head size) of the scores is folded into the query projection.
        q = node("Transpose", [node("Reshape", [linear(x, p + "attention.self.query", f"l{i}_q", scale),
                                                "heads_shape"], f"l{i}_qh")], f"l{i}_qt", perm=[0, 2, 1, 3])
        k = node("Transpose", [node("Reshape", [linear(x, p + "attention.self.key", f"l{i}_k"),
                                                "heads_shape"], f"l{i}_kh")], f"l{i}_kt", perm=[0, 2, 3, 1])
        v = node("Transpose", [node("Reshape", [linear(x, p + "attention.self.value", f"l{i}_v"),
                                                "heads_shape"], f"l{i}_vh")], f"l{i}_vt", perm=[0, 2, 1, 3])
        scores = node("Add", [node("MatMul", [q, k], f"l{i}_qk"), attn_bias], f"l{i}_scores")
        probs = node("Softmax", [scores], f"l{i}_probs", axis=-1)
        context = node("Transpose", [node("MatMul", [probs, v], f"l{i}_ctx")], f"l{i}_ctxt", perm=[0, 2, 1, 3])
        context = node("Reshape", [context, "hidden_shape"], f"l{i}_context")
        attended = linear(context, p + "attention.output.dense", f"l{i}_attn")
        x = layer_norm(node("Add", [attended, x], f"l{i}_res1"), p + "attention.output.LayerNorm", f"l{i}_x1")
        inner = linear(x, p + "intermediate.dense", f"l{i}_inter")
        # Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), as BERT uses (onnxruntime fuses it).
        erf = node("Erf", [node("Mul", [inner, "sqrt_half"], f"l{i}_scaled")], f"l{i}_erf")
        gelu = node("Mul", [node("Mul", [inner, "half"], f"l{i}_halfx"),
                            node("Add", [erf, "one"], f"l{i}_erf1")], f"l{i}_gelu")
        out = linear(gelu, p + "output.dense", f"l{i}_out")
        x = layer_norm(node("Add", [out, x], f"l{i}_res2"), p + "output.LayerNorm", f"l{i}_x2")
    # Mean over the tokens of the mask, then L2 normalization.
    mask3 = node("Unsqueeze", [mask, "axis_last"], "mask3")
    summed = node("ReduceSum", [node("Mul", [x, mask3], "masked"), "axis1"], "summed", keepdims=0)
    count = node("Max", [node("ReduceSum", [mask, "axis1"], "count0", keepdims=1), "one"], "count")
    pooled = node("Div", [summed, count], "pooled")
    norm = node("Max", [node("ReduceL2", [pooled, "axis_last"], "norm0", keepdims=1), "tiny"], "norm")
    node("Div", [pooled, norm], "sentence_embedding")
    graph = helper.make_graph(
        nodes, "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "length"])],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", dim])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="ivr-agent models.encoder_onnx")
    model.ir_version = IR_VERSION
    return model


class _NoPreprocessingAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def quantize(model: Any, out: Path) -> None:
    """Writes the int8 variant of a float32 model to `out`: weights int8 per output column with
    7-bit range (`reduce_range`: no saturation in the u8 x s8 products of CPUs without VNNI; it costs
    about 0.001 of cosine against the float vectors), activations uint8 quantized per call."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = _NoPreprocessingAdvice()
    logging.getLogger().addFilter(quiet)  # quantize_dynamic advises shape pre-processing on the root logger
    try:
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "float32.onnx"
            source.write_bytes(model.SerializeToString())
            quantize_dynamic(source, out, op_types_to_quantize=["MatMul"], per_channel=True, reduce_range=True,
                             weight_type=QuantType.QInt8, extra_options={"MatMulConstBOnly": True})
    finally:
        logging.getLogger().removeFilter(quiet)


# --- the cache


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_model(archive: Path, variant: str, weights: Any = None, folder: Path | None = None) -> Path:
    """The path of the `variant` model built from `archive`'s weights, built and cached if missing or
    damaged. `weights`: a callable returning (weights, config), called only when building."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown encoder variant {variant!r}: one of {', '.join(VARIANTS)}")
    folder = folder or cache_dir()
    key = cache_key(archive, variant)
    path, meta = folder / f"{key}.onnx", folder / f"{key}.json"
    with _build_lock:
        if _valid(path, meta):
            return path
        try:
            import onnx  # noqa: F401
        except ImportError:
            raise ModelMissingError(f"building the ONNX sentence encoder needs the onnx package: {INSTALL_HINT}") \
                from None
        started = time.perf_counter()
        folder.mkdir(parents=True, exist_ok=True)
        if weights is None:
            from models.encoder import read_archive

            weights = lambda: read_archive(archive)[::2]  # noqa: E731
        arrays, config = weights()
        model = build_model(arrays, config)
        if variant == "onnx":
            data = model.SerializeToString()
        else:
            with tempfile.TemporaryDirectory(dir=folder) as tmp:
                quantize(model, Path(tmp) / "int8.onnx")
                data = (Path(tmp) / "int8.onnx").read_bytes()
        meta.unlink(missing_ok=True)
        record = {"sha256": hashlib.sha256(data).hexdigest(), "variant": variant, "graph_version": GRAPH_VERSION,
                  "source": str(archive)}
        atomic_write(path, data, mode=0o644)  # a cache of public weights, not private
        atomic_write(meta, json.dumps(record).encode(), mode=0o644)
        log.info("built the %s sentence encoder in %.1f s: %s", variant, time.perf_counter() - started, path)
        return path


def _valid(path: Path, meta: Path) -> bool:
    if not path.is_file() or not meta.is_file():
        return False
    try:
        expected = json.loads(meta.read_text(encoding="utf-8"))["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if _sha256(path) != expected:
        log.warning("cached sentence encoder %s is damaged: rebuilding it", path)
        return False
    return True


def invalidate(path: Path) -> None:
    """Drops a cached model (one onnxruntime could not load), so the next load rebuilds it."""
    path.with_suffix(".json").unlink(missing_ok=True)
    path.unlink(missing_ok=True)


def session(path: Path, threads: int = 1) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
