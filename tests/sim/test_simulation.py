"""The deterministic simulator over the nodes' own protocol cores: it replays a seed exactly,
finds the documented design's weak points, and keeps every seed that once found a Bazar defect as a
regression test."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nodes.sim.run import Options, PlannedFault, explore, simulate
from nodes.verify.history import Operation

ROOT = Path(__file__).resolve().parents[2]


# ---- the simulator --------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_seed_replays_byte_for_byte_whatever_python_hashes() -> None:
    command = [sys.executable, "launcher.py", "simulate", "--seed", "26"]
    digests = set()
    for hash_seed in ("0", "12345"):
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=50,
                             env={"PYTHONHASHSEED": hash_seed, "PATH": "/usr/bin:/bin"})
        assert out.returncode == 0, out.stdout + out.stderr
        digests.add(out.stdout.split("history digest ")[1].split()[0])
    assert len(digests) == 1


@pytest.mark.timeout(120)
def test_a_short_simulate_run_passes_in_bazar_mode() -> None:
    out = subprocess.run([sys.executable, "launcher.py", "simulate", "--seeds", "40", "--first-seed", "500"],
                         cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "seeds run: 40" in out.stdout and "verdict: PASS" in out.stdout


def _first_failure(options: Options, kinds: set[str], seeds: int) -> set[str]:
    found = explore(options, range(1, seeds + 1))
    assert found.failures, f"no seed of {seeds} found {kinds} in documented mode"
    return {a.kind for a in found.failures[0].anomalies}


@pytest.mark.timeout(120)
def test_documented_mode_loses_updates_w1() -> None:
    """Concurrent buyers, no faults at all: docs/protocol.md's unguarded write loses updates."""
    kinds = _first_failure(Options(mode="documented", faults=(), buyers=4, readers=0), {"lost buy"}, 20)
    assert "lost buy" in kinds


@pytest.mark.timeout(120)
def test_documented_mode_reads_stale_stock_from_a_replica_back_from_a_cut_off_w2() -> None:
    """One buyer (so no two writes race), replicas cut off and healed: stale reads."""
    kinds = _first_failure(Options(mode="documented", faults=("cut",), buyers=1, readers=2), {"stale read"}, 30)
    assert "stale read" in kinds


@pytest.mark.timeout(120)
def test_documented_mode_carries_a_buy_out_twice_w7() -> None:
    """Pauses past the callers' time-outs: a retried buy is carried out twice."""
    found = explore(Options(mode="documented", faults=("hang",), buyers=1, readers=0), range(1, 81),
                    stop_at_first=False)
    kinds = {a.kind for result in found.failures for a in result.anomalies}
    assert "buy done twice" in kinds


#: Seeds that once found a Bazar defect, each fixed (see the commit messages): they must pass.
REGRESSION_SEEDS = {
    26: "a retried buy whose first attempt took the last copy was answered 'out of stock'",
    118: "a buy delivered twice to the front-end ran twice, one copy answered 'out of stock'",
    157: "a buy delivered twice to an order replica ran twice",
    696: "a write delivered twice answered 'busy' while its twin wrote",
    140: "a writer whose update answers were lost withdrew the write as 'not done'",
    1152: "a replica cut off from its peers wrote alone: two copies of one seq (W8)",
    20: "a replica cut off one way from one peer kept vouching for a stale copy (peer-granted leases)",
    5082: "a writer withdrew a write whose update a peer had taken, then reused its seq",
    5266: "a retried buy was vouched for before the leases of the replica its write left out ran out",
    6325: "an unconfirmed write's buy spread by catch-up though the write gave way",
    6598: "the front-end's lease renewal dropped its seq floors and cached an older copy",
    9205: "a writer stepped its copy back over a newer one catch-up brought during its write",
    11801: "an unconfirmed write was handed to a peer by a check's answer, then could not give way",
    2026121544: "a write confirmed late was vouched for as done while a peer that lacked it held a lease",
    2026205126: "a retried buy was vouched for by a peer while the front-end cached the copy before it",
    2026807915: "a writer skipped a replica that had refused it, though it had restarted and held a new lease",
    2026204393: "a write built on its writer's unconfirmed copy overwrote the peers' other write of that seq",
    2026213267: "a read hop answered its unconfirmed copy over a peer's of that seq; a write built on it",
    2026930585: "a replica whose lease had lapsed in a partition trusted it again once a peer restarted",
    # A read hop hedged to the next peer after 150 ms (tried in round three, not kept) took a
    # fast peer's conflict while a slower one held the newer copy: stale reads.
    2026960037: "a hedged read hop decided on a conflict while a slower peer held a newer copy",
    2026962281: "a hedged read hop decided on a conflict while a slower peer held a newer copy",
    # Found when reservations leaked by timed-out checks were first released by heartbeat: a write
    # delivered twice queued behind its refused twin and carried the buy out after the order
    # replica had answered "nothing was bought" (now each attempt is named, W7).
    2027106759: "a duplicated write carried a buy out after its twin was refused and 'failed' answered",
    # Found once every node had a clock of its own (issue 25, item 3). 512: the refusal of a
    # write's copy reached the order replica before the twin's answer; the buy, carried out,
    # was answered "not done" (a copy now gets its twin's answer). 11801, with its own clocks:
    # a lease "until 0.0" (never granted) held on a clock reading -2277 s (now: NEVER).
    512: "a duplicated write's refusal overtook its twin's answer; the buy done was answered 'failed'",
    # Known failing since round three: a writer that crashed with a write unconfirmed came back
    # with it on disk as settled, its buy remembered though the peers took another write of that
    # seq. Tentative writes are now marked on disk and settled after a restart too.
    2026931348: "a crashed writer's unconfirmed buy stayed remembered after its restart",
    # Found once the "disk" fault filled catalog disks (issue 25, items 2 and 4). 27: a replica
    # whose disk refused the last writes took a peer's conflict at seq 9 as leave to vouch for
    # its seq 5. 279: a peer that granted a write and could not store it was not waited out.
    27: "a replica behind on a full disk vouched for its old copy after a peer's conflict",
    279: "a write acknowledged while a peer that could not store it still held a lease",
    # Found by the 20,000-seed run of the "corrupt" fault: a row found damaged at start that
    # was a tentative write kept its buys, which the peers never carried out.
    2027417932: "a damaged row's unconfirmed buys were kept after a restart",
    # The next 20,000 stopped here: the disk was full when that replica started, and forgetting
    # the buys raised out of its start (now forgotten on disk with the row's repair).
    2027508255: "a full disk at start made forgetting a damaged row's buys raise",
    # The next 20,000 with full disks: a replica behind on a full disk vouched for its old copy
    # once the peers it could ask were out of reach (its lease held; a peer's ping answer had
    # shown it a newer seq): 2027600854, 2027601083, 2027603148, 2027606576, 2027606838,
    # 2027608155, 2027617923, 2027604929. A replica behind on a full disk took a cut-off writer's
    # late offer of a seq its peers held another write of (2027617714). Two replicas each
    # lacking a buy the other had, with as many buys each, never compared them (2027609448).
    2027600854: "a replica behind on a full disk vouched for its old copy with its peers out of reach",
    2027601083: "a replica behind on a full disk vouched for its old copy",
    2027603148: "a replica behind on a full disk vouched for its old copy",
    2027604929: "a replica behind on a full disk vouched for its old copy; replicas diverged",
    2027606576: "a replica behind on a full disk vouched for its old copy",
    2027606838: "a replica behind on a full disk vouched for its old copy",
    2027608155: "a replica behind on a full disk vouched for its old copy",
    2027617923: "a replica behind on a full disk vouched for its old copy",
    2027617714: "a replica behind on a full disk took a late offer of a seq its peers held another write of",
    2027609448: "two replicas lacking different buys of a book, as many each, never compared them",
    # And the 20,000 after that: a writer whose disk refused its own write while a hung peer
    # still held the update reused the seq; resumed, the peer took the old write (2027701985).
    2027701985: "a writer that could not store a write a hung peer may hold reused its seq",
    # The last 20,000 (4791ead): a check that waited for the replica's own write round was
    # answered with that write's copy once the round ended unconfirmed.
    2027804812: "a check that waited out a write round was handed the round's unconfirmed copy",
    2027812070: "a check that waited out a write round was handed the round's unconfirmed copy",
    2027814778: "a check that waited out a write round was handed the round's unconfirmed copy",
    2027819821: "a check that waited out a write round was handed the round's unconfirmed copy",
    # The same run, with full disks: a writer whose disk refused a write one peer had taken
    # forgot it; that peer crashed, and the writer granted another write of the same seq.
    2027802125: "a write one peer took, refused by its writer's disk, had its seq reused",
    2027804390: "a write one peer took, refused by its writer's disk, had its seq reused",
    # A writer whose store waited kept granting the peer its write left out leases on the old
    # copy, and another replica answered the buy's retry as done while that lease still ran.
    2027818278: "a buy vouched for as done while the writer's lease on the old copy still ran",
    # The first 20,000 with rows changed checksum and all (593eb02): a restarted replica took its
    # changed row as confirmed because every peer answered and none showed a different row of its
    # seq, though one held that seq as an unconfirmed write of its own and said nothing of it.
    2028300427: "a row changed on disk was confirmed while a peer held its seq unsaid",
    2028302941: "a row changed on disk was confirmed while a peer held its seq unsaid",
    2028313794: "a row changed on disk was confirmed while a peer held its seq unsaid",
    # Found on the final code: a replica hung for 2.5 s had last found a peer refusing (it was
    # restarting) and, resumed, still counted that refusal as a lease and served stale stock.
    2028600941: "a refusal heard before a long pause still counted as a lease after it",
    # The last 20,000 fresh seeds on b94bd34 (2028700001-2028720000), and the one left of
    # 2028300001-2028320000. The first: a replica cut off by one partition, healed for 120 ms,
    # then cut off with the front-end by the next, found every peer silent and answered its old
    # copy as "the last replica", its lease long lapsed. The two others: a row changed checksum
    # and all on a restarted replica, the only other holder of its seq restarted too, the third
    # behind (its disk full): no majority could tell the true row, and the book was served by no
    # one for good. The third now votes with the row a peer handed it (``witnessed``).
    2028704065: "a replica whose lease had lapsed answered its old copy when no peer answered",
    2028712420: "two restarted replicas' rows of one seq differed, the third behind: no convergence",
    2028314085: "two unconfirmed rows of one seq, the third replica behind: the book never converges",
    # Found by 20,000 fresh seeds on ec5ae69 (2029000001-2029020000), failing before it too: a
    # writer whose disk refused its write offered it again, and the peer that had taken it
    # answered "busy" because a cut-off writer held another write of that seq; that writer's
    # offers met "busy" at the first: neither write ever settled.
    2029015981: "a late offer of a write already taken was refused as busy: two writes stuck for good",
    # Found by fresh seeds with the heartbeat's deltas (2026-12-05): the same row with the same
    # buy left unconfirmed at two writers, each refusing the other's offer (found with the
    # buys' window off, as the delta commit alone ran); and a replica back with a row changed
    # checksum and all answered it to a hop, the peer it asked vouching for the seq before.
    2032911593: "the very same write unconfirmed at two writers, each refusing the other's offer",
    2033306536: "a restarted replica's unconfirmed row, newer than a peer's vouched one, answered to a hop",
    2033517330: "a write read back at start, its row changed on disk, offered to and taken by a peer behind",
    # Found on 2026-12-06 by fresh seeds with a silent peer's waits cut (issue 28): a client's
    # buy delivered twice, the copy late, run anew after "not done" and carried out through the
    # other order replica (the front-end now hands a copy the first outcome but "unknown"); and
    # one buy's write unconfirmed at two writers, one holding it only in memory, each giving
    # way to the other's copy of it and forgetting the buy (the very same write is now taken).
    2041009306: "a late copy of a buy answered 'not done' carried out through the other order replica",
    2042003494: "the very same write, unconfirmed at two writers and in memory at one, given way at both",
    # A write answered once a majority took it, 0.2 s on, while a peer's update was still out
    # (lost): a read's hop to the writer had made that peer vouch for the old copy again.
    2048006196: "a write a majority took answered before the peer still out could stop vouching",
    # The next two were not traced: stale reads too, failing with the first form and passing
    # with the same fix.
    2048011891: "a stale read after a write a majority took, a one-way cut among the faults",
    2048017654: "a stale read after a write a majority took, message loss among the faults",
    # Found on 2026-12-07 by 20,000 fresh seeds (failing on older code too): one buy retried
    # through two writers, each granted by the third alone, left the very same write
    # unconfirmed at both; the third refused both late offers while the other showed that seq.
    2056019075: "the same write unconfirmed at two writers, granted by the third alone: stuck",
    # Found once order replicas wrote books they last saw in stock at once (new schedules):
    2064001167: "two writes of one seq each unconfirmed at its writer, the third refused both",
    2064010732: "a check refused while its peer restarted dropped the lease that peer took since",
    2066009210: "a damaged row repaired from a copy older than the write it held: a lost buy",
    # Found on 2026-12-07 by 20,000 fresh seeds (failing on older code too): a peer took the
    # write and answered its buy's retry "bought"; the writer, its update's answer lost,
    # answered a hop with its old copy until its round timed out.
    2079014380: "a writer vouched for its old copy while its update was out: a stale read",
    # Found the same day by 11,200 fresh seeds (failing on older code too): the front-end's
    # buy delivered twice, the copy after its answer "not done", was run anew and bought.
    2081010325: "a late copy of a buy answered not done was run again and carried out",
}

#: Found by the 100,000-seed run (3 simulated seconds of load each): a writer's read hop handed
#: its unconfirmed copy on, and a retried buy was vouched for while still unconfirmed; the
#: write then gave way to its own copy and its effect stayed without its buy.
SHORT_REGRESSION_SEEDS = (1033230, 1046084, 1086538, 1092022)


#: The seeds found before every simulated node had a clock of its own: replayed as found, with
#: one perfect clock for all, and with clocks of their own.
FOUND_ON_STEADY_CLOCKS = frozenset(seed for seed in REGRESSION_SEEDS
                                   if seed < 2027300001 and seed not in (27, 279, 512))


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("seed", "clocks"), [
    (seed, clocks) for seed in sorted(REGRESSION_SEEDS)
    for clocks in ((False, True) if seed in FOUND_ON_STEADY_CLOCKS else (True,))])
def test_a_seed_that_once_found_a_defect_passes(seed: int, clocks: bool) -> None:
    """Replayed as it was found (steady clocks for the seeds found before clocks were
    simulated), and with each node's own clock within the bounds (nodes/core/clocks.py)."""
    result = simulate(Options(seed=seed, clocks=clocks))
    assert result.passed, f"seed {seed} ({REGRESSION_SEEDS[seed]}): " + "; ".join(map(str, result.anomalies))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("seed", SHORT_REGRESSION_SEEDS)
def test_a_seed_of_the_long_run_that_once_failed_passes(seed: int) -> None:
    result = simulate(Options(seed=seed, seconds=3, clocks=False))  # as found
    assert result.passed, f"seed {seed}: " + "; ".join(map(str, result.anomalies))


#: Found by `simulate --seeds 1500 --first-seed 8200001 --buyers 16 --stock 200` on the first
#: group commit (issue 17): a tentative write confirmed by its buy alone, which a retry had
#: carried out in another write of the same seq (8200026: two rows with one seq); riders
#: boarded on top of an unconfirmed write, whose copies the fallback to the base then did not
#: take (8201002); a retried buy that became known while its write waited, carried out again
#: because a buy no longer needs its base to match (8200285, 8201283).
GROUP_COMMIT_REGRESSION_SEEDS = (8200026, 8200285, 8201002, 8201283)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("seed", GROUP_COMMIT_REGRESSION_SEEDS)
def test_a_seed_that_broke_the_first_group_commit_passes(seed: int) -> None:
    result = simulate(Options(seed=seed, seconds=3, buyers=16, stock=200, clocks=False))  # as found
    assert result.passed, f"seed {seed}: " + "; ".join(map(str, result.anomalies))


# ---- many buyers at once (issue 17), on the virtual clock, so the bounds are exact ------------
def _crowd(buyers: int) -> tuple[list[Operation], int]:
    """32 buyers with no pause between buys over seven books, no faults: the buys that
    finished, and how many catalog write rounds carried them (with two catalog replicas, each
    round sends one check to the other)."""
    result = simulate(Options(seed=5, faults=(), catalogs=2, orders=2, buyers=buyers, readers=0, seconds=5,
                              stock=100_000))
    assert result.passed, result.anomalies[:3]
    return [op for op in result.history.operations if op.kind == "buy" and op.start < 4.5], result.sent["Check"]


def test_32_buyers_at_once_are_all_served_quickly_and_share_write_rounds() -> None:
    """Before: buys of one book refused each other (stale bases, busy reservations across
    replicas) and retried; p99 was 5.6 simulated seconds, some gave up. Now buys of a book
    meet at one replica and ride on one write round."""
    buys, rounds = _crowd(32)
    latencies = sorted(op.end - op.start for op in buys)
    assert all(op.outcome == "bought" for op in buys)
    assert latencies[int(0.99 * len(latencies))] < 0.25, f"p99 {latencies[int(0.99 * len(latencies))]:.3f} s"
    written = sum(1 for op in buys if op.outcome == "bought")
    assert rounds < written, f"{rounds} write rounds for {written} buys: none shared a round"


# ---- lookups that miss together share one read (issue 17) ----------------------------------
@pytest.mark.timeout(120)
def test_lookups_that_miss_together_share_one_read_and_never_read_stale() -> None:
    """Sixteen readers and eight buyers under every kind of fault: lookups of a book that miss
    while a read of it is under way wait for that read, and take its answer only when it is
    as new as every write announced before they began; the checker finds no stale read.
    Without that last rule, 78 of 400 seeds read stale (these four among them)."""
    results = [simulate(Options(seed=seed, seconds=3, readers=16, buyers=8, stock=40))
               for seed in (9710001, 9710006, 9710013, 9710015)]
    shared = sum(result.shared_reads for result in results)
    for result in results:
        assert result.passed, f"seed {result.options.seed}: " + "; ".join(map(str, result.anomalies))
    assert shared > 50, f"only {shared} lookups shared a read"


# ---- a buy refused for want of a majority is answered at once ----------------------------------
@pytest.mark.timeout(60)
def test_with_no_majority_a_buy_is_refused_without_waiting_for_an_order_replica_known_out() -> None:
    """2 + 2, catalog1 hung for good: no write can gather a majority, so every buy fails.
    Before, the front-end, refused by order0, tried order1 too, which its probe knew was out
    (its catalog does not answer), and waited its catalog's 1.5 s time-out: every buy took
    ~1.55 s to fail. The refusal in words is the outcome."""
    result = simulate(Options(seed=11, faults=(), catalogs=2, orders=2, buyers=2, readers=0, seconds=5),
                      [PlannedFault("hang", "catalog1", 1.0, 5.0)])
    assert result.passed, result.anomalies[:3]
    late = [op for op in result.history.operations if op.kind == "buy" and 2.5 < op.start < 4.0]
    assert late, "no buy was made while catalog1 hung"
    assert all(op.outcome != "bought" for op in late), [op.outcome for op in late]
    slowest = max(op.end - op.start for op in late)
    assert slowest < 0.7, f"a buy took {slowest:.2f} simulated s to be refused"


#: Found on 2026-12-07 by `simulate --seeds 2000 --first-seed 2055000001 --catalogs 5` on a form
#: of the write that outwaited a stalled peer's reported leases only (not landed): a writer cut
#: off with one peer of four counted its update taken, the other side made another write of its
#: seq, and the minority's buy was remembered everywhere with no copy taken (W8, "A majority
#: holds it"). The defect was there before; the timing of that form showed it.
FIVE_CATALOG_SEEDS = (2055000646, 2067500032)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", FIVE_CATALOG_SEEDS)
def test_a_five_catalog_seed_that_once_failed_passes(seed: int) -> None:
    result = simulate(Options(seed=seed, catalogs=5))
    assert result.passed, f"seed {seed}: " + "; ".join(map(str, result.anomalies))
