"""Grouping volumes and the containers that go down for them."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salvage.core.grouping import GroupShape, group


def shape(volumes, containers):
    return GroupShape(frozenset(volumes), frozenset(containers))


# web mounts a and b; worker mounts b; cron (same project as web) mounts c; solo mounts d.
MOUNTS = {"web": ["a", "b"], "worker": ["b"], "cron": ["c"], "solo": ["d", "x"]}
PROJECTS = {"web": "shop", "worker": None, "cron": "shop", "solo": None, "idle": "shop"}


def test_individual_is_one_group_per_volume():
    assert group(["b", "a", "d", "e"], MOUNTS, PROJECTS, "individual") == [
        shape("a", ["web"]),
        shape("b", ["web", "worker"]),
        shape("d", ["solo"]),
        shape("e", []),
    ]


def test_smart_joins_volumes_shared_by_a_container():
    assert group(["a", "b", "c", "d", "e"], MOUNTS, PROJECTS, "smart") == [
        shape("ab", ["web", "worker"]),
        shape("c", ["cron"]),
        shape("d", ["solo"]),
        shape("e", []),
    ]


def test_smart_is_the_default_mode():
    assert group(["a", "b"], MOUNTS) == [shape("ab", ["web", "worker"])]


def test_project_takes_a_compose_project_down_whole():
    # c joins a and b through project "shop"; idle mounts nothing but belongs to "shop".
    assert group(["a", "b", "c", "d"], MOUNTS, PROJECTS, "project") == [
        shape("abc", ["web", "worker", "cron", "idle"]),
        shape("d", ["solo"]),
    ]


def test_project_mode_without_projects_is_smart():
    assert group("abcd", MOUNTS, None, "project") == group("abcd", MOUNTS, None, "smart")


def test_duplicate_and_unmounted_volumes():
    assert group(["e", "e"], MOUNTS, PROJECTS, "smart") == [shape("e", [])]
    assert group([], MOUNTS, PROJECTS, "project") == []


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="grouping mode"):
        group(["a"], MOUNTS, PROJECTS, "clever")


# --- properties over random container-volume graphs -----------------------------------------

VOLUMES = [f"v{i}" for i in range(8)]
CONTAINERS = [f"c{i}" for i in range(8)]


@st.composite
def graphs(draw):
    wanted = draw(st.lists(st.sampled_from(VOLUMES), unique=True))
    names = draw(st.lists(st.sampled_from(CONTAINERS), unique=True))
    mounts = {c: draw(st.lists(st.sampled_from(VOLUMES), unique=True)) for c in names}
    projects = {c: draw(st.sampled_from([None, "p0", "p1", "p2"])) for c in names}
    return wanted, mounts, projects


def mounted(mounts, volume):
    return {c for c, vols in mounts.items() if volume in vols}


def check_common(groups, wanted, mounts):
    placed = [v for g in groups for v in g.volumes]
    assert sorted(placed) == sorted(set(wanted)), "each wanted volume in exactly one group"
    for g in groups:
        for volume in g.volumes:
            assert mounted(mounts, volume) <= g.containers
    assert [min(g.volumes) for g in groups] == sorted(min(g.volumes) for g in groups)


def check_disjoint_containers(groups):
    seen = [c for g in groups for c in g.containers]
    assert len(seen) == len(set(seen)), "a container is in at most one group"


def connected(volumes, mounts):
    """Whether the volumes are linked to each other through containers mounting them."""
    volumes = set(volumes)
    reached, todo = set(), [min(volumes)]
    while todo:
        volume = todo.pop()
        reached.add(volume)
        for c in mounted(mounts, volume):
            todo += [v for v in mounts[c] if v in volumes and v not in reached]
    return reached == volumes


@settings(max_examples=200, deadline=None)
@given(graphs())
def test_individual_properties(graph):
    wanted, mounts, projects = graph
    groups = group(wanted, mounts, projects, "individual")
    check_common(groups, wanted, mounts)
    assert [g.volumes for g in groups] == [frozenset([v]) for v in sorted(wanted)]
    for g in groups:
        assert g.containers == mounted(mounts, min(g.volumes))


@settings(max_examples=200, deadline=None)
@given(graphs())
def test_smart_properties(graph):
    wanted, mounts, projects = graph
    groups = group(wanted, mounts, projects, "smart")
    check_common(groups, wanted, mounts)
    check_disjoint_containers(groups)
    for c, vols in mounts.items():
        holding = [g for g in groups if g.volumes & set(vols)]
        assert len(holding) <= 1, f"{c}'s volumes are split"
    for g in groups:
        # Only the containers that need to, and no bigger than needed.
        assert g.containers == set().union(*(mounted(mounts, v) for v in g.volumes))
        assert connected(g.volumes, mounts)


@settings(max_examples=200, deadline=None)
@given(graphs())
def test_project_properties(graph):
    wanted, mounts, projects = graph
    groups = group(wanted, mounts, projects, "project")
    check_common(groups, wanted, mounts)
    check_disjoint_containers(groups)
    for vols in mounts.values():
        assert len([g for g in groups if g.volumes & set(vols)]) <= 1
    for g in groups:
        involved = {projects[c] for c in g.containers} - {None}
        assert {c for c, p in projects.items() if p in involved} <= g.containers
        # Nothing beyond the volumes' consumers and their projects.
        consumers = set().union(*(mounted(mounts, v) for v in g.volumes))
        assert all(c in consumers or projects[c] in involved for c in g.containers)
    for p in {"p0", "p1", "p2"}:
        assert len([g for g in groups if any(projects[c] == p for c in g.containers)]) <= 1


@settings(max_examples=200, deadline=None)
@given(graphs(), st.sampled_from(["individual", "smart", "project"]), st.randoms())
def test_output_does_not_depend_on_input_order(graph, mode, rnd: random.Random):
    wanted, mounts, projects = graph

    def shuffled(items):
        items = list(items)
        rnd.shuffle(items)
        return items

    again = (
        shuffled(wanted),
        {c: shuffled(mounts[c]) for c in shuffled(mounts)},
        {c: projects[c] for c in shuffled(projects)},
    )
    assert group(*again, mode) == group(wanted, mounts, projects, mode)
