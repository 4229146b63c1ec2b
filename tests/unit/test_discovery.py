"""What discovery reads from the engine's two lists (on the fake engine, held to Docker's
list by the engine contract): bind mounts by host path and destination."""

from __future__ import annotations

from salvage.config.schema import Tide
from salvage.core.model import Bind
from salvage.core.selection import bind_name, select
from salvage.engine.discovery import discover


def test_a_bind_mount_s_host_path_and_destination_are_as_docker_lists_them(fake, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (tmp_path / "app.conf").write_text("x")
    fake.add_volume("db")
    fake.add_container(
        "app",
        volumes=("db",),
        binds=(f"{config}:/etc/app:ro", f"{tmp_path}/app.conf:/app.conf"),
        labels={"salvage.tide.daily": "db,/etc/app"},
    )
    found = discover(fake.engine())
    (app,) = found.containers
    assert app.volumes == ("db",)
    assert set(app.binds) == {
        Bind(str(config), "/etc/app", True),
        Bind(f"{tmp_path}/app.conf", "/app.conf", False),
    }
    selection = select(found, Tide("daily"))
    assert selection.problems == [] and selection.names == ["db", bind_name(str(config))]
    (bind,) = selection.binds.values()
    assert (bind.host_path, bind.containers) == (str(config), ("app",))
