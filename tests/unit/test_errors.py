"""One base for salvage's exceptions: one line and the exit code the CLI ends with."""

import importlib
import inspect
import pkgutil

import salvage
from salvage.errors import EXIT_CONFIG, EXIT_FAILED, SalvageError

# salvage.config's ConfigError is declared with the configuration (its own branch);
# _Cut is a private signal inside one function of notify.delivery.
EXEMPT = {"ConfigError", "_Cut"}


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
    from salvage.record import RecordDamaged, RecordError

    assert RecordDamaged("x").exit_code == ProxyConfigError("x").exit_code == EXIT_CONFIG
    assert RecordError("x").exit_code == EngineError("x").exit_code == EXIT_FAILED
