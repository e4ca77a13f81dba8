"""The embedding backend of the intent model: all-MiniLM-L6-v2 in numpy from its installed package,
a sentence-vector head blended with the TF-IDF model, files without pickle, fallback without the
encoder, and `ivr train intents --backend`."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from dialog.nlu import embed
from dialog.nlu.data import Example, read_examples
from dialog.nlu.model import EMBED_FILE, EmbeddingHead, IntentModel, default_model_dir
from dialog.nlu.train import TrainConfig, evaluate, stratified_split, train
from ivr.cli import main
from ivr.errors import ModelMissingError

BANK_CSV = default_model_dir() / "bank_intents.csv"
needs_encoder = pytest.mark.skipif(not embed.available(), reason=f"encoder not installed: {embed.INSTALL_HINT}")


def test_safetensors_are_read_without_torch():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([7, 8], dtype=np.int64)
    header = {"__metadata__": {"format": "pt"},
              "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
              "b": {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]}}
    raw = json.dumps(header).encode()
    arrays = embed.read_safetensors(struct.pack("<Q", len(raw)) + raw + a.tobytes() + b.tobytes())
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
