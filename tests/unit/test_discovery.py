"""What discovery reads from the engine's two lists (on the fake engine, held to Docker's
lists by the engine contract): containers with their mounts, volumes, the compose files of
projects without depends_on labels, and --rm asked of the containers a tide could stop."""

from __future__ import annotations

from salvage.config.schema import Tide
from salvage.core.model import (
    COMPOSE_CONFIG_FILES,
    COMPOSE_PROJECT,
    COMPOSE_SERVICE,
    COMPOSE_VOLUME,
    COMPOSE_WORKING_DIR,
    Bind,
    ComposeFiles,
    Container,
    Host,
    Volume,
)
from salvage.core.selection import bind_name, select
from salvage.engine.client import Engine
from salvage.engine.discovery import discover


def shop(service, directory):
    return {
        COMPOSE_PROJECT: "shop",
        COMPOSE_SERVICE: service,
        COMPOSE_WORKING_DIR: str(directory),
        COMPOSE_CONFIG_FILES: "docker-compose.yml",
    }


def test_discovery_reads_containers_volumes_and_compose_files_as_docker_lists_them(fake, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (tmp_path / "app.conf").write_text("x")
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  db: {}\n  web:\n    depends_on: [db]\n"
    )
    project = {COMPOSE_PROJECT: "shop", COMPOSE_VOLUME: "db"}
    fake.add_volume("shop_db", labels=project)
    fake.volume_list[fake.add_volume("shared")]["Driver"] = "rexray/ebs"
    fake.volume_list["shop_db"]["Options"] = {"type": "none", "o": "bind", "device": "/srv/db"}
    tide = {"salvage.tide.daily": "db,/etc/app"}
    ids = {
        "shop-db-1": fake.add_container(
            "shop-db-1",
            volumes=("shop_db",),
            binds=(f"{config}:/etc/app:ro", f"{tmp_path}/app.conf:/app.conf"),
            labels={**shop("db", tmp_path), **tide},
        ),
        # Not a user of the tide's volumes, but of its project: asked for --rm.
        "shop-web-1": fake.add_container(
            "shop-web-1", labels=shop("web", tmp_path), auto_remove=True
        ),
        # Neither: never asked (each inspect costs a request).
        "Xlone": fake.add_container("Xlone", auto_remove=True),
        "other-app-1": fake.add_container(
            "other-app-1", labels={COMPOSE_PROJECT: "other"}, auto_remove=True
        ),
        "old": fake.add_container("old", "exited", binds=(f"{tmp_path}/gone:/gone",)),
    }
    fake.add_container("salvage-crane-db-1", labels={"salvage.crane": "tar"})  # left out
    fake.calls.clear()
    found = discover(fake.engine(), [Tide("daily")])
    assert found.containers == (
        Container(
            ids["shop-db-1"],
            "shop-db-1",
            "running",
            {**shop("db", tmp_path), **tide},
            ("shop_db",),
            (
                Bind(str(config), "/etc/app", True),
                Bind(f"{tmp_path}/app.conf", "/app.conf", False),
            ),
        ),
        Container(
            ids["shop-web-1"], "shop-web-1", "running", shop("web", tmp_path), auto_remove=True
        ),
        Container(ids["Xlone"], "Xlone", "running"),
        Container(ids["other-app-1"], "other-app-1", "running", {COMPOSE_PROJECT: "other"}),
        Container(ids["old"], "old", "exited", binds=(Bind(f"{tmp_path}/gone", "/gone", None),)),
    )
    assert found.volumes == {
        "shop_db": Volume(
            "shop_db",
            "local",
            project,
            {"type": "none", "o": "bind", "device": "/srv/db"},
            fake.volume_list["shop_db"]["CreatedAt"],
        ),
        "shared": Volume("shared", "rexray/ebs", created=fake.volume_list["shared"]["CreatedAt"]),
    }
    assert found.compose_files == {
        "shop": ComposeFiles((str(tmp_path / "docker-compose.yml"),), {"db": (), "web": ("db",)})
    }
    asked = sorted(ref for (ref,) in fake.called("inspect_container"))
    assert asked == sorted([ids["shop-db-1"], ids["shop-web-1"]])
    selection = select(found, Tide("daily"))
    assert selection.problems == [] and selection.names == ["shop_db", bind_name(str(config))]


class Sparse:
    """An engine whose list answers carry only what no engine leaves out (an id, a name)."""

    def __init__(self, fake) -> None:
        self.fake = fake

    def containers(self, all=False, filters=None):
        return [{"Id": item["Id"]} for item in self.fake.containers(all=all, filters=filters)]

    def volumes(self, filters=None):
        return {"Volumes": [{"Name": v["Name"]} for v in self.fake.volumes()["Volumes"]]}


def test_what_a_list_answer_leaves_out_takes_docker_s_defaults(fake):
    made = fake.add_container("app", labels={"salvage.tide.daily": "data"}, volumes=("data",))
    fake.add_volume("data", labels={"x": "y"})
    found = discover(Engine(api=Sparse(fake)), [Tide("daily")])
    assert found == Host((Container(made, made[:12], ""),), {"data": Volume("data")}, {})


def test_no_tide_asks_nothing_more(fake):
    fake.add_container("app", auto_remove=True, labels={"salvage.tide.daily": "data"})
    fake.calls.clear()
    assert discover(fake.engine()).containers[0].auto_remove is False
    assert [name for name, _ in fake.calls] == ["containers", "volumes"]
