"""What a person at a terminal sees: `salvage run` on a real pseudo-terminal (progress,
a table, colour unless NO_COLOR), plain lines when piped; shell completion through a
real bash."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.boundary  # docs/testing.md: run again on the distribution's libraries

ANSI = re.compile(r"\033\[[0-9;]*m")


def _config(salvage, bad: str) -> None:
    salvage.use_script(f'[ "$SALVAGE_VOLUME_NAME" != "{bad}" ] || exit 5', grouping="individual")


def _on_a_terminal(salvage, *args: str, **env: str):
    """Run salvage with its stderr on a pseudo-terminal; its exit code and what it showed."""
    main, side = pty.openpty()
    environ = dict(os.environ, DOCKER_HOST=salvage.host, TERM="xterm", **env)
    if "NO_COLOR" not in env:
        environ.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "salvage", "-c", str(salvage.config), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=side,
        env=environ,
    )
    os.close(side)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    return process.wait(timeout=120), shown.decode().replace("\r\n", "\n")


def _volumes(stack):
    made = []
    for name in ("good", "bad"):
        volume = stack.volume(name)
        stack.container(name, [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
        made.append(volume)
    return made


def test_run_on_a_terminal_shows_progress_and_a_table(stack, salvage):
    good, bad = _volumes(stack)
    _config(salvage, bad)

    code, shown = _on_a_terminal(salvage, "run")
    assert code == 1
    assert "\033[" in shown  # colour on a terminal
    plain = ANSI.sub("", shown)
    assert f"tide {stack.tide}: 2 volumes in 2 groups" in plain
    assert re.search(r"group 1/2 \S+: done in [0-9.]+ s, containers down", plain)
    assert re.search(rf"volume [12]/2 {good}: backed up in ", plain)
    assert re.search(rf'volume [12]/2 {bad}: crane "script" exited with 5', plain)
    table = plain[plain.index("volume  ") :].splitlines()
    assert table[0].split() == ["volume", "group", "result", "took", "down"]
    rows = {line.split()[0]: line.split() for line in table[1:3]}
    assert rows[good][2] == "ok" and rows[bad][2] == "failed"
    assert rows[bad][-4:] == ['"script"', "exited", "with", "5"]
    assert f"tide {stack.tide}: 1 of 2 volumes failed" in table[3]

    code, shown = _on_a_terminal(salvage, "run", NO_COLOR="1")
    assert code == 1 and "\033[" not in shown
    assert f"tide {stack.tide}: 1 of 2 volumes failed" in shown

    piped = salvage("run")  # not a terminal: the log's lines only
    assert piped.returncode == 1
    assert "volume 1/2" not in piped.stderr and "\033[" not in piped.stderr
    assert f"tide {stack.tide}: 1 volume backed up, 1 failed" in piped.stderr


def test_shell_completion_through_bash(tmp_path):
    config = tmp_path / "salvage.toml"
    config.write_text('[tides.nightly]\n[tides.weekly]\nschedule = "weekly"\n')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "salvage").write_text(f'#!/bin/sh\nexec {sys.executable} -m salvage "$@"\n')
    (bin_dir / "salvage").chmod(0o755)

    def complete(*words: str) -> list:
        script = textwrap.dedent(
            f"""
            source <(salvage completion bash)
            COMP_WORDS=({" ".join(repr(w) for w in words)})
            COMP_CWORD={len(words) - 1}
            _salvage_completion salvage
            printf '%s\\n' "${{COMPREPLY[@]}}"
            """
        )
        env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
        done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("salvage", "st") == ["status"]
    assert set(complete("salvage", "")) >= {"run", "plan", "check", "status", "history"}
    assert complete("salvage", "-c", str(config), "run", "--tide", "") == ["nightly", "weekly"]
    assert complete("salvage", "-c", str(config), "history", "--tide", "w") == ["weekly"]
    assert complete("salvage", "completion", "") == ["bash", "zsh", "fish"]

    for shell, mark in (
        ("zsh", "#compdef salvage"),
        ("fish", "complete --no-files --command salvage"),
    ):
        printed = subprocess.run(
            [sys.executable, "-m", "salvage", "completion", shell], capture_output=True, text=True
        )
        assert printed.returncode == 0 and mark in printed.stdout
        assert f"_SALVAGE_COMPLETE={shell}_complete" in printed.stdout
