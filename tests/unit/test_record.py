"""The record's file format: append-only JSON lines, a torn tail ignored, damage refused."""

import dataclasses
import errno
import json
import os

import pytest

from salvage.safety.record import Entry, Record, RecordDamaged, RecordUnwritable


def entry(container, **kw):
    return Entry(container, f"name-{container}", "stop", "running", 1.0, "run", "tide", **kw)


def test_entries_come_back_in_order_and_an_update_keeps_its_place(tmp_path):
    record = Record(str(tmp_path))
    record.add(entry("a"))
    record.add(entry("b"))
    record.add(dataclasses.replace(entry("a"), stopped_at="2026-01-01T00:00:00Z"))
    assert [(e.container, e.stopped_at) for e in record.entries()] == [
        ("a", "2026-01-01T00:00:00Z"),
        ("b", ""),
    ]


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_line(tmp_path):
    record = Record(str(tmp_path))
    record.add(entry("a"))
    with open(record.path, "ab") as stream:
        stream.write(b'{"add":{"container":"b","na')
    assert [e.container for e in record.entries()] == ["a"]
    record.add(entry("c"))
    assert [e.container for e in record.entries()] == ["a", "c"]


def test_the_last_removal_empties_the_file(tmp_path):
    record = Record(str(tmp_path))
    record.add(entry("a"))
    record.add(entry("b"))
    record.remove(entry("a"))
    record.remove(entry("b"))
    assert record.entries() == [] and (tmp_path / "record.jsonl").stat().st_size == 0


@pytest.mark.parametrize(
    "text", ["garbage\n", "[]\n", '{"add": {"container": "x"}}\n', '{"nope": 1}\n\n']
)
def test_damage_before_the_last_line_is_refused_in_one_line(tmp_path, text):
    (tmp_path / "record.jsonl").write_text(text)
    with pytest.raises(RecordDamaged) as raised:
        Record(str(tmp_path)).entries()
    assert str(tmp_path / "record.jsonl") in str(raised.value)
    assert "\n" not in str(raised.value)


def test_an_older_record_json_is_read_and_moved_over(tmp_path):
    legacy = {"written": 0, "entries": [dataclasses.asdict(entry("old"))]}
    (tmp_path / "record.json").write_text(json.dumps(legacy))
    record = Record(str(tmp_path))
    assert [e.container for e in record.entries()] == ["old"]
    record.add(entry("new"))
    assert not (tmp_path / "record.json").exists()
    assert [e.container for e in record.entries()] == ["old", "new"]


@pytest.mark.parametrize("text", ["[]", "{", "garbage"])
def test_a_damaged_older_record_json_is_refused(tmp_path, text):
    (tmp_path / "record.json").write_text(text)
    with pytest.raises(RecordDamaged):
        Record(str(tmp_path)).entries()


def test_removing_one_entry_keeps_every_other_one(tmp_path):
    record = Record(str(tmp_path))
    for name in "abc":
        record.add(entry(name))
    record.remove(entry("b"))
    assert [e.container for e in record.entries()] == ["a", "c"]
    assert [e.container for e in Record(str(tmp_path)).entries()] == ["a", "c"]  # on disk
    record.remove(entry("a"))
    assert [e.container for e in record.entries()] == ["c"]
    assert (tmp_path / "record.jsonl").stat().st_size > 0


def synced(monkeypatch):
    """What os.fsync was called on, by path, in order."""
    seen = []
    real = os.fsync

    def spy(fd):
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return seen


def test_each_line_is_fsynced_and_a_new_file_s_directory_too(tmp_path, monkeypatch):
    state = tmp_path / "state"
    seen = synced(monkeypatch)
    record = Record(str(state))
    record.add(entry("a"))  # a new file: its directory entry must reach the disk too
    assert seen == [str(state / "record.jsonl"), str(state)]
    seen.clear()
    record.add(entry("b"))
    record.remove(entry("a"))
    assert seen == [str(state / "record.jsonl")] * 2
    seen.clear()
    record.remove(entry("b"))  # the last one: the file is emptied, and that is synced
    assert seen == [str(state / "record.jsonl")]


def test_a_line_that_is_not_on_disk_is_cut_back_out_and_the_entry_not_recorded(
    tmp_path, monkeypatch
):
    record = Record(str(tmp_path))
    record.add(entry("a"))
    size = (tmp_path / "record.jsonl").stat().st_size

    def failing(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(RecordUnwritable, match="Input/output error"):
        record.add(entry("b"))  # written whole, never on disk: the caller does not act on it
    monkeypatch.undo()
    assert (tmp_path / "record.jsonl").stat().st_size == size
    assert [e.container for e in record.entries()] == ["a"]


def test_a_short_write_is_cut_back_out(tmp_path, monkeypatch):
    record = Record(str(tmp_path))
    record.add(entry("a"))
    before = (tmp_path / "record.jsonl").read_bytes()
    real = os.pwrite

    def short(fd, data, offset):  # the disk filled up half way through the line
        return real(fd, data[: len(data) // 2], offset)

    monkeypatch.setattr(os, "pwrite", short)
    with pytest.raises(RecordUnwritable, match="No space left on device"):
        record.add(entry("b"))
    monkeypatch.undo()
    assert (tmp_path / "record.jsonl").read_bytes() == before
    record.add(entry("c"))
    assert [e.container for e in Record(str(tmp_path)).entries()] == ["a", "c"]


def test_damage_says_which_file_and_what_to_do(tmp_path):
    (tmp_path / "record.jsonl").write_text("garbage\n")
    with pytest.raises(RecordDamaged) as raised:
        Record(str(tmp_path)).entries()
    assert str(raised.value) == (
        f"{tmp_path}/record.jsonl is damaged (line 1): it lists the containers salvage stopped"
        " or paused; start any that are down by hand (docker ps -a), then remove the file"
    )
