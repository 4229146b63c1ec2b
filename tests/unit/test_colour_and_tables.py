"""Colour only on a terminal, and never with NO_COLOR or TERM=dumb; tables aligned on
their text, not on colour codes."""

import io
import os
import re

import pytest

from salvage.terminal import Paint, colour


@pytest.fixture
def tty():
    """The writing side of a real pseudo-terminal."""
    main, side = os.openpty()
    stream = open(side, "w", encoding="utf-8")
    yield stream
    stream.close()
    os.close(main)


@pytest.mark.parametrize(
    "env, expected",
    [({}, True), ({"NO_COLOR": "1"}, False), ({"NO_COLOR": ""}, True), ({"TERM": "dumb"}, False)],
)
def test_colour_on_a_terminal_unless_told_not_to(tty, monkeypatch, env, expected):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert colour(tty) is expected


def test_no_colour_when_not_a_terminal(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert colour(io.StringIO()) is False and Paint(io.StringIO())("x", "red") == "x"


def test_marks_fall_back_to_words_without_utf8():
    plain = Paint(io.TextIOWrapper(io.BytesIO(), encoding="ascii"))
    assert (plain.ok, plain.failed) == ("ok", "FAILED")
    assert (Paint(io.TextIOWrapper(io.BytesIO(), encoding="utf-8")).ok) == "✓"


def test_a_table_lines_up_with_and_without_colour(tty, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    rows = [["db", ("ok", "green"), "2.0 s"], ["uploads", ("failed", "red"), "10.5 s"]]
    coloured = Paint(tty).table(["volume", "result", "took"], rows)
    plain = Paint(io.StringIO()).table(["volume", "result", "took"], rows)
    assert plain == ["volume   result  took", "db       ok      2.0 s", "uploads  failed  10.5 s"]
    assert [re.sub(r"\033\[[0-9;]*m", "", line) for line in coloured] == plain
    assert "\033[32mok    \033[0m" in coloured[1]
