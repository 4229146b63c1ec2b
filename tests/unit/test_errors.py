"""One base for salvage's exceptions: one line and the exit code the CLI ends with."""

import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import salvage
from salvage.errors import EXIT_CONFIG, EXIT_FAILED, SalvageError

# salvage.config's ConfigError is declared with the configuration (its own branch);
# _Cut is a private signal inside one function of notify.delivery.
EXEMPT = {"ConfigError", "_Cut"}
ROOT = Path(__file__).resolve().parents[2]


def salvage_exceptions():
    for info in pkgutil.walk_packages(salvage.__path__, "salvage."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, Exception)
                and value.__module__ == info.name
                and name not in EXEMPT
            ):
                yield value


def test_every_exception_of_salvage_is_a_salvage_error():
    found = list(salvage_exceptions())
    assert len(found) >= 14
    assert [cls.__name__ for cls in found if not issubclass(cls, SalvageError)] == []


def test_exit_codes_a_damaged_record_and_a_proxy_rule_are_for_a_person_to_fix():
    from salvage.actions.proxy_config import ProxyConfigError
    from salvage.engine.client import EngineError
    from salvage.safety.record import RecordDamaged, RecordError

    assert RecordDamaged("x").exit_code == ProxyConfigError("x").exit_code == EXIT_CONFIG
    assert RecordError("x").exit_code == EngineError("x").exit_code == EXIT_FAILED


def cli(tmp_path, config: str, *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / "salvage.toml"
    path.write_text(config)
    path.chmod(0o600)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "salvage", "-c", str(path), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_s_one_handler_says_one_line_with_the_error_s_exit_code(tmp_path):
    config = f'state_directory = "{tmp_path}/state"\n'
    odd = config + '[cranes.odd]\nimage = "x"\nmounts = { "/srv/q\\"d" = "/t" }\n'
    done = cli(tmp_path, odd, "proxy-config")  # ProxyConfigError: EXIT_CONFIG
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith('error: /srv/q"d: only letters') and done.stderr.count("\n") == 1
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "history.sqlite").write_text("not a database")
    done = cli(tmp_path, config, "history")  # HistoryError: EXIT_FAILED
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
