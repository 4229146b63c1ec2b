"""The salvage.* container labels: exit-code policies, settings, tide references."""

import re

import pytest

from salvage.core import labels
from salvage.core.labels import (
    ExitCodePolicy,
    Settings,
    parse_exit_policy,
    parse_settings,
    resolve,
    tide_refs,
)
from salvage.core.model import COMPOSE_PROJECT, COMPOSE_VOLUME, Container, Host, Volume


def container(name="web", project=None, **extra):
    tags = dict(extra)
    if project:
        tags[COMPOSE_PROJECT] = project
    return Container(id=f"id-{name}", name=name, state="running", labels=tags)


def with_labels(name="web", **tags):
    return Container(id=f"id-{name}", name=name, state="running", labels=tags)


def compose_volume(project, name):
    return Volume(f"{project}_{name}", labels={COMPOSE_PROJECT: project, COMPOSE_VOLUME: name})


# --- exit-code policies ---------------------------------------------------------------------


def test_stop_aborts_on_any_nonzero_code():
    policy = parse_exit_policy("stop")
    assert policy.codes is None
    assert not policy.aborts(0)
    assert policy.aborts(1) and policy.aborts(255)


def test_ignore_never_aborts():
    policy = parse_exit_policy(" ignore ")
    assert not policy.aborts(1) and not policy.aborts(255)


def test_code_list_with_ranges():
    policy = parse_exit_policy("1, 3-5")
    assert policy.codes == {1, 3, 4, 5}
    assert [code for code in range(8) if policy.aborts(code)] == [1, 3, 4, 5]


def test_default_policy_is_stop():
    assert ExitCodePolicy().aborts(2) and not ExitCodePolicy().aborts(0)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("3-1", '"3-1" is not a range of exit codes'),
        ("300", '"300" is not a range of exit codes'),
        ("250-256", "0-255"),
        ("x", '"x" is not stop, ignore, or a list of codes'),
        ("", "is not stop, ignore"),
        ("1,,2", "is not stop, ignore"),
        ("-1", "is not stop, ignore"),
        ("1-", "is not stop, ignore"),
        ("1-2-3", "is not stop, ignore"),
        ("Stop", "is not stop, ignore"),
    ],
)
def test_bad_exit_policies_raise_with_a_message(text, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        parse_exit_policy(text)


# --- settings -------------------------------------------------------------------------------


def test_settings_default_to_stop():
    settings, problems = parse_settings(container())
    assert problems == []
    assert settings == Settings(action="stop", pre=None, post=None, user=None)
    assert settings.exit_policy == ExitCodePolicy()


@pytest.mark.parametrize("label", [labels.PRE, labels.POST])
def test_a_command_makes_the_default_action_ignore(label):
    settings, problems = parse_settings(with_labels(**{label: "pg_dump ..."}))
    assert problems == []
    assert settings.action == "ignore"


def test_explicit_action_wins_over_the_command_default():
    tags = {labels.PRE: "sync", labels.ACTION: "pause"}
    settings, problems = parse_settings(with_labels(**tags))
    assert problems == [] and settings.action == "pause"


def test_empty_command_does_not_count():
    settings, _ = parse_settings(with_labels(**{labels.PRE: ""}))
    assert settings.pre is None and settings.action == "stop"


def test_all_labels_parsed():
    tags = {
        labels.ACTION: " pause ",
        labels.PRE: "a",
        labels.POST: "b",
        labels.EXITCODE: "2-3",
        labels.USER: " postgres ",
    }
    settings, problems = parse_settings(with_labels(**tags))
    assert problems == []
    assert settings.action == "pause"
    assert (settings.pre, settings.post, settings.user) == ("a", "b", "postgres")
    assert settings.exit_policy.codes == {2, 3}


def test_malformed_action_is_one_problem_naming_container_and_label():
    settings, problems = parse_settings(with_labels(**{labels.ACTION: "halt"}))
    assert [str(p) for p in problems] == [
        'container "web": label salvage.action: "halt" is not one of stop, pause, ignore'
    ]
    assert settings.action == "stop"  # the safe fallback


def test_malformed_exitcode_is_a_problem():
    _, problems = parse_settings(with_labels(**{labels.EXITCODE: "9-1"}))
    assert len(problems) == 1
    assert str(problems[0]).startswith('container "web": label salvage.command.exitcode: ')


def test_empty_user_is_a_problem():
    _, problems = parse_settings(with_labels(**{labels.USER: "  "}))
    assert [str(p) for p in problems] == ['container "web": label salvage.user: is empty']


def test_unknown_salvage_label_is_a_problem():
    _, problems = parse_settings(with_labels(**{"salvage.acton": "stop", "other.label": "x"}))
    assert [str(p) for p in problems] == [
        'container "web": label salvage.acton: is not a salvage label'
    ]


def test_salvage_own_crane_labels_are_not_problems():
    tags = {"salvage.crane": "tar", "salvage.crane.tide": "daily", "salvage.run": "1"}
    assert parse_settings(with_labels(**tags))[1] == []


# --- tide references ------------------------------------------------------------------------


def texts(refs):
    return {tide: [ref.text for ref in items] for tide, items in refs.items()}


def test_tide_refs_split_and_strip():
    c = with_labels(**{"salvage.tide.daily": "a, b", "salvage.tide.weekly": "g:shared"})
    refs, problems = tide_refs(c)
    assert problems == []
    assert texts(refs) == {"daily": ["a", "b"], "weekly": ["g:shared"]}
    assert refs["weekly"][0].is_global and not refs["daily"][0].is_global
    assert refs["daily"][0].label == "salvage.tide.daily"
    assert refs["daily"][0].container is c


def test_tide_label_with_empty_value_is_a_problem():
    refs, problems = tide_refs(with_labels(**{"salvage.tide.daily": " "}))
    assert refs == {}
    assert [str(p) for p in problems] == [
        'container "web": label salvage.tide.daily: names no volume'
    ]


def test_tide_label_without_tide_name_is_a_problem():
    refs, problems = tide_refs(with_labels(**{"salvage.tide.": "a"}))
    assert refs == {}
    assert [str(p) for p in problems] == ['container "web": label salvage.tide.: names no tide']


@pytest.mark.parametrize("bad", ["-a", "a b", "g:", "g:_x", "a/b", "é"])
def test_bad_volume_names_are_problems_and_good_ones_kept(bad):
    refs, problems = tide_refs(with_labels(**{"salvage.tide.daily": f"good, {bad}"}))
    assert texts(refs) == {"daily": ["good"]}
    assert [str(p) for p in problems] == [
        f'container "web": label salvage.tide.daily: "{bad}" is not a volume name'
    ]


# --- resolving references to real volume names ----------------------------------------------


def one_ref(c, tide="daily"):
    refs, problems = tide_refs(c)
    assert problems == []
    (ref,) = refs[tide]
    return ref


def test_bare_name_on_compose_container_is_scoped_to_its_project():
    host = Host(
        volumes={
            v.name: v
            for v in [compose_volume("shop", "db"), compose_volume("blog", "db"), Volume("db")]
        }
    )
    ref = one_ref(container(project="shop", **{"salvage.tide.daily": "db"}))
    assert resolve(ref, host) == ("shop_db", None)


def test_global_name_is_the_real_name():
    host = Host(volumes={"db": Volume("db"), "shop_db": compose_volume("shop", "db")})
    ref = one_ref(container(project="shop", **{"salvage.tide.daily": "g:db"}))
    assert resolve(ref, host) == ("db", None)


def test_bare_name_outside_compose_is_the_real_name():
    host = Host(volumes={"shop_db": compose_volume("shop", "db")})
    assert resolve(one_ref(container(**{"salvage.tide.daily": "shop_db"})), host) == (
        "shop_db",
        None,
    )


def test_compose_bare_name_does_not_match_a_real_name():
    host = Host(volumes={"db": Volume("db")})
    name, problem = resolve(
        one_ref(container(project="shop", **{"salvage.tide.daily": "db"})), host
    )
    assert name is None
    assert str(problem) == (
        'container "web": label salvage.tide.daily: no volume "db" in compose project "shop"'
        ' (use "g:db" for a volume outside the project)'
    )


@pytest.mark.parametrize("project, text", [(None, "gone"), ("shop", "g:gone")])
def test_missing_volume_is_a_problem_naming_container_and_label(project, text):
    ref = one_ref(container(project=project, **{"salvage.tide.daily": text}))
    name, problem = resolve(ref, Host())
    assert name is None
    assert str(problem) == 'container "web": label salvage.tide.daily: no volume named "gone"'
