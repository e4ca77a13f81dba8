"""Whisper base assembled from its two packages: checked, atomic, rebuilt when damaged, never half there."""

from __future__ import annotations

import hashlib

import pytest

from models import whisper_base
from models.errors import ModelMissingError
from models.whisper_base import DamagedModelError, whisper_base_dir


def _parts(tmp_path, first=b"half one|", second=b"half two"):
    one, two = tmp_path / "p1" / "data", tmp_path / "p2" / "data"
    one.mkdir(parents=True)
    two.mkdir(parents=True)
    (one / "model.bin.part1").write_bytes(first)
    (two / "model.bin.part2").write_bytes(second)
    small = {}
    for name in whisper_base.SMALL_FILES:
        (one / name).write_text(f"{name} content")
        small[name] = hashlib.sha256(f"{name} content".encode()).hexdigest()
    return (one, two), small


@pytest.fixture
def fake_parts(tmp_path, monkeypatch):
    parts, small = _parts(tmp_path)
    monkeypatch.setattr(whisper_base, "SMALL_FILES", small)
    monkeypatch.setattr(whisper_base, "MODEL_SHA256", hashlib.sha256(b"half one|half two").hexdigest())
    return parts


def test_the_model_is_the_two_parts_joined_with_its_files_beside_it(tmp_path, fake_parts):
    folder = whisper_base_dir(tmp_path / "cache", fake_parts)
    assert (folder / "model.bin").read_bytes() == b"half one|half two"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]
    assert whisper_base_dir(tmp_path / "cache", fake_parts) == folder  # built once, then found


def test_a_damaged_part_is_refused_and_leaves_no_model(tmp_path, fake_parts, monkeypatch):
    (fake_parts[1] / "model.bin.part2").write_bytes(b"half tw0")
    with pytest.raises(DamagedModelError, match="force-reinstall"):
        whisper_base_dir(tmp_path / "cache", fake_parts)
    folder = next((tmp_path / "cache").iterdir())
    assert not (folder / "model.bin").exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_a_truncated_cached_model_is_rebuilt(tmp_path, fake_parts):
    folder = whisper_base_dir(tmp_path / "cache", fake_parts)
    (folder / "model.bin").write_bytes(b"half one|")
    assert (whisper_base_dir(tmp_path / "cache", fake_parts) / "model.bin").read_bytes() == b"half one|half two"


def test_a_missing_part_names_the_install_command(tmp_path, fake_parts):
    (fake_parts[1] / "model.bin.part2").unlink()
    with pytest.raises(ModelMissingError, match="whisper-base"):
        whisper_base_dir(tmp_path / "cache", fake_parts)
