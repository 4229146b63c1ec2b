"""The Grafana dashboard and the alert rules in examples/ query only metrics that a real run
and a real verify write into salvage.prom: a renamed metric fails here."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from support import prom_examples
from support.harness import TAR_CRANE


def test_every_metric_the_examples_query_is_in_a_real_prom_file(stack, salvage):
    volume = stack.volume("data")
    stack.container("app", [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
    textfile = salvage.tmp / "textfile"
    textfile.mkdir()
    salvage.write_config(
        f"""
        machine = "testhost"
        state_directory = "{salvage.state}"
        metrics_directory = "{textfile}"
        [tides.{stack.tide}]
        crane = "tar"
        [cranes.tar]
        image = "{TAR_CRANE}"
        pull = "never"
        mounts = {{ "@BACKUPS@" = "/salvage/target" }}
        """
    )
    salvage("run", check_code=0)
    salvage("verify", check_code=0)  # the verify metrics
    text = (textfile / "salvage.prom").read_text()
    written = {
        sample.name
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels["tide"] == stack.tide
    }
    named = prom_examples.metric_names()
    assert len(named) >= 10
    assert named - written == set(), text
