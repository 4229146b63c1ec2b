"""The record's file format: append-only JSON lines, a torn tail ignored, damage refused."""

import dataclasses
import json

import pytest

from salvage.safety.record import Entry, Record, RecordDamaged


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
