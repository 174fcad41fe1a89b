"""Every documented figure (S1–S12) and weak point (W1–W8; W8a is W8 under the documented
rules), replayed from its scenario file
on a real cluster: starting state built by crashes, restarts, cut-offs and real writes,
the figure's request sent, and its hops, answers and final seq/valid marks compared."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from nodes.session.scenarios import SCENARIO_DIR, Player, ScenarioError, describe, load, load_all, parse

pytestmark = pytest.mark.timeout(120)
IDS = [scenario.id for scenario in load_all()]


def test_every_figure_and_weak_point_has_a_scenario():
    assert sorted(IDS) == sorted([f"S{i}" for i in range(1, 13)] + [f"W{i}" for i in range(1, 9)] + ["W8a"])
    figures = {s.figure for s in load_all() if s.figure}
    pictures = {p.name for p in (SCENARIO_DIR.parents[2] / "shared/seeds/images/replication").glob("*.png")}
    assert len(figures) == 12 and (not pictures or figures == pictures)


@pytest.mark.parametrize("scenario_id", IDS)
async def test_scenario_plays_as_its_file_says(scenario_id, tmp_path):
    scenario = load(scenario_id)
    outcome = await Player(tmp_path).play(scenario)
    assert outcome.matched, outcome.verdict()
    assert len(outcome.sentences()) == len(outcome.hops)
    if scenario.figure:
        assert outcome.verdict().startswith(f"matches {scenario.figure}")


@pytest.mark.parametrize(("text", "message"), [
    ('title = "x"', "top level.id is missing"),
    ('id = "X"\ntitle = "x"', "[request] is missing"),
    ('id = "X"\ntitle = "x"\n[cluster]\ncatalogs = 12\n[request]\npath = "/"', "cluster.catalogs must be"),
    ('id = "X"\ntitle = "x"\n[[setup]]\ndo = "explode"\n[request]\npath = "/"', "'do' must be one of"),
    ('id = "X"\ntitle = "x"\n[[setup]]\ndo = "crash"\nnode = "catalog7"\n[request]\npath = "/"',
     "names 'catalog7', but the cluster has"),
    ('id = "X"\ntitle = "x"\n[request]\npath = "/"\n[expect]\nseq = [0]', "expect.seq must list 3 values"),
])
def test_a_wrong_scenario_file_gets_a_clear_message(text, message):
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace(".", r"\.")):
        parse(tomllib.loads(text), Path("mine.toml"))


def test_a_copied_scenario_can_be_edited_and_loaded(tmp_path):
    copy = tmp_path / "mine.toml"
    copy.write_text((SCENARIO_DIR / "S2.toml").read_text().replace('id = "S2"', 'id = "S2-mine"'))
    assert load(copy).id == "S2-mine"
    with pytest.raises(ScenarioError, match="no scenario"):
        load(tmp_path / "missing.toml")


def test_each_hop_gets_a_plain_sentence():
    from nodes.observe.traces import Hop

    hop = Hop(2, "catalog0", "catalog1", "/rep/get/2 req: [] seq_n: 0", "200 OK", 200, 1.0, 0.0)
    assert describe(hop) == ("catalog0 does not hold the book as valid, so it asks catalog1 (already asked: []; "
                             "highest seq seen 0) → 200 OK.")


@pytest.mark.parametrize(("answers", "matched"), [
    ([(503, {"message": "Nothing was bought", "outcome": "not done"}), (200, {"success": True})], True),
    ([(200, {"success": False}), (200, {"success": True})], True),  # catalog0 took the sale first
    ([(200, {"success": True}), (200, {"success": True})], False),  # one copy sold twice
    ([(503, {"message": "no"}), (503, {"message": "no"})], False),
])
def test_racing_buyers_may_end_either_way_but_never_sell_twice(answers, matched):
    """W8's two buyers at the same moment: its file lists both endings the machine may choose
    (``statuses`` and ``outcomes`` as lists of lists); a copy sold twice matches neither."""
    from nodes.session.scenarios import Outcome, _differences
    scenario = load(SCENARIO_DIR / "W8.toml")
    outcome = Outcome(scenario, None, [], answers, 0.5, [])
    assert (not _differences(scenario, outcome)) is matched, _differences(scenario, outcome)
