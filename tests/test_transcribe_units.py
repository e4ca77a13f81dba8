"""Batch transcription pieces without a model: inputs, formats, done markers, the CLI's refusals."""

from __future__ import annotations

import pytest

from asr.base import Word
from ivr.transcribe.engine import FileResult, Segment, split_words
from ivr.transcribe.formats import parse_formats, to_srt, to_vtt
from ivr.transcribe.inputs import discover
from ivr.transcribe.store import OutputStore, remove_stale_temp_files
from models.atomicfile import atomic_write
from models.errors import AgentError
from tests.transcribe_support import check_srt, check_vtt


def _result() -> FileResult:
    w = (Word("Hello", 0.0, 0.4, 0.9), Word("there.", 0.4, 0.8, 0.8))
    return FileResult("a.wav", 3725.5, "en", (
        Segment(0.0, 0.8, "Hello there.", 0.85, w, "caller"),
        Segment(3723.25, 3723.25, "Bye --> now", 0.5, (), "agent")))


def test_srt_and_vtt_are_well_formed_with_hours_and_speakers():
    srt, vtt = to_srt(_result()), to_vtt(_result())
    assert check_srt(srt) == 2 and check_vtt(vtt) == 2
    assert "01:02:03,250 --> 01:02:03,251" in srt and "caller: Hello there." in srt
    assert "01:02:03.250 --> 01:02:03.251" in vtt


def test_formats_are_checked():
    assert parse_formats("jsonl, SRT,srt") == ("jsonl", "srt")
    with pytest.raises(ValueError, match="docx"):
        parse_formats("jsonl,docx")


def test_words_are_cut_into_segments_at_sentence_ends_and_pauses():
    words = [Word("Press", 0, 0.3, 1), Word("one.", 0.3, 0.6, 1), Word("Or", 0.7, 0.8, 1),
             Word("two", 0.8, 1.0, 1), Word("later", 2.5, 2.9, 1)]
    assert [[w.text for w in g] for g in split_words(words)] == [["Press", "one."], ["Or", "two"], ["later"]]


def test_discover_walks_folders_and_names_outputs(tmp_path):
    (tmp_path / "calls" / "2024").mkdir(parents=True)
    for name in ("calls/a.wav", "calls/a.flac", "calls/2024/b.MP3", "calls/notes.txt", "calls/.hidden.wav"):
        (tmp_path / name).write_bytes(b"x")
    found = {f.output_stem for f in discover([tmp_path / "calls"])}
    assert found == {"a.wav", "a.flac", "2024/b"}
    with pytest.raises(AgentError, match="no such file"):
        discover([tmp_path / "missing"])


def test_done_marker_needs_same_input_settings_and_complete_outputs(tmp_path):
    (tmp_path / "in").mkdir()
    src = tmp_path / "in" / "x.wav"
    src.write_bytes(b"abc")
    item = discover([src])[0]
    store = OutputStore(tmp_path / "out", ("jsonl", "txt"), {"model": "tiny.en"})
    assert not store.is_done(item)
    store.write(item, {"jsonl": "{}\n", "txt": "hi\n"}, 1.0)
    assert store.is_done(item)
    assert not OutputStore(tmp_path / "out", ("jsonl", "txt"), {"model": "other"}).is_done(item)
    assert not OutputStore(tmp_path / "out", ("jsonl", "srt"), {"model": "tiny.en"}).is_done(item)
    (tmp_path / "out" / "x.txt").write_text("h")  # truncated output
    assert not store.is_done(item)
    store.write(item, {"jsonl": "{}\n", "txt": "hi\n"}, 1.0)
    src.write_bytes(b"abcd")  # the recording changed
    assert not store.is_done(discover([src])[0])


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write(tmp_path / "d" / "f.txt", b"1")
    (tmp_path / "d" / ".f.txt.abc.tmp").write_bytes(b"half")  # as a killed job leaves it
    assert remove_stale_temp_files(tmp_path) == 1
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["f.txt"]


def test_negative_speaker_count_is_refused_clearly(tmp_path, capsys):
    from ivr.cli import main

    assert main(["transcribe", str(tmp_path), "--out", str(tmp_path / "o"), "--diarize", "--speakers", "-1"]) == 1
    assert "--speakers must be 0 (estimate) or more" in capsys.readouterr().err


def test_help_states_exit_status(capsys):
    from ivr.cli import main

    with pytest.raises(SystemExit):
        main(["transcribe", "--help"])
    assert "1 some files failed" in capsys.readouterr().out


def test_windows_are_cut_into_even_pieces():
    from ivr.transcribe.engine import _even_groups

    windows = [{"start": float(i), "end": i + 0.5} for i in range(9)]
    assert [len(g) for g in _even_groups(windows, 8)] == [5, 4]
    assert [len(g) for g in _even_groups(windows, 3)] == [3, 3, 3]
    assert [len(g) for g in _even_groups(windows[:2], 8)] == [2]
    assert _even_groups([], 8) == []
    assert [w for g in _even_groups(windows, 4) for w in g] == windows


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg"])
def test_read_span_gives_the_samples_of_the_whole_file(tmp_path, suffix):
    import numpy as np
    import soundfile as sf

    from ivr.transcribe.engine import read_span
    from telephony.audio.audiofile import read_audio

    rng = np.random.default_rng(0)
    stereo = (rng.standard_normal((24000, 2)) * 3000).astype(np.int16)
    path = tmp_path / f"x{suffix}"
    sf.write(str(path), stereo, 8000)
    whole = read_audio(path)
    mono, rate = read_span(str(path), 5000, 17000)
    assert rate == 8000 and np.array_equal(mono, whole.mono()[5000:17000])
    right, _ = read_span(str(path), 0, 100, channel=1)
    assert np.array_equal(right, whole.channel(1)[:100])
    with pytest.raises(AgentError, match="changed"):
        read_span(str(path), 20000, 30000)


def test_a_file_is_assembled_from_its_pieces_in_time_order():
    from ivr.transcribe.engine import FilePlan, Piece, PieceResult, assemble

    plan = FilePlan("a.wav", 10.0, "en", (Piece(0, 0, 100, ((0.0, 1.0),), 0, "caller"),
                                          Piece(1, 0, 100, ((0.0, 1.0),), 1, "agent")), plan_s=0.5)
    caller = PieceResult((Segment(0.5, 1.0, "Hi.", 0.9, (), "caller"), Segment(6.0, 10.4, "Bye.", 0.8,
                          (Word("Bye.", 6.0, 10.4, 0.8),), "caller")), decode_s=1.0)
    agent = PieceResult((Segment(2.0, 3.0, "Hello.", 0.9, (), "agent"),), decode_s=1.0)
    result = assemble(plan, [caller, agent])
    assert [s.text for s in result.segments] == ["Hi.", "Hello.", "Bye."]
    assert result.segments[-1].end_s == 10.0 and result.segments[-1].words[0].end_s == 10.0
    assert result.decode_s == 2.5 and result.ok and result.language == "en"
    failed = assemble(plan, [caller, PieceResult(error="cannot be read again")])
    assert failed.error == "cannot be read again" and not failed.segments
