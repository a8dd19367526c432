"""Turn tracker and overlap rules on hand-built timelines (CONTRACT section 2)."""

from __future__ import annotations

import pytest
from pacelight.analysis.overlaps import classify_overlaps
from pacelight.analysis.turns import Segmenter, TurnTracker


def f(s: float) -> int:
    return int(round(s * 100))


def seg(a: float, b: float) -> tuple[int, int]:
    return (f(a), f(b))


def track(agent, customer) -> TurnTracker:
    t = TurnTracker()
    t.add([seg(*x) for x in agent], [seg(*x) for x in customer])
    t.finish()
    return t


def test_backchannel_is_not_an_interruption():
    t = track([(0, 10)], [(4.0, 4.6)])
    assert [(o.kind, o.by) for o in t.overlaps] == [("backchannel", "customer")]
    c = t.counts()
    assert c["customer_backchannels"] == 1 and c["customer_interruptions"] == 0


def test_interruption_attributed_to_the_party_who_started_it():
    # Customer talks 0-6; agent comes in at 5, keeps talking 3 s; customer stops within 1 s.
    t = track([(5, 8)], [(0, 6)])
    assert [(o.kind, o.by) for o in t.overlaps] == [("interruption", "agent")]
    assert t.counts()["agent_interruptions"] == 1
    assert t.overlap_s() == pytest.approx(1.0)


def test_plain_overlap_when_nobody_yields():
    t = track([(0, 10)], [(3, 9)])
    assert [(o.kind, o.by) for o in t.overlaps] == [("overlap", "customer")]


def test_short_intrusion_the_other_stops_at_is_plain_overlap():
    # Agent says something short (0.5 s) as the customer finishes: not a backchannel (the customer
    # did not keep talking), not an interruption (agent did not keep talking 1 s).
    t = track([(4.8, 5.3)], [(0, 5.0)])
    assert [o.kind for o in t.overlaps] == ["overlap"]


def test_other_must_stop_within_two_seconds():
    t = track([(2, 6)], [(0, 4.5)])  # customer stops 2.5 s after the agent came in
    assert [o.kind for o in t.overlaps] == ["overlap"]
    t = track([(2, 6)], [(0, 3.9)])
    assert [o.kind for o in t.overlaps] == ["interruption"]


def test_streaming_walk_equals_offline_rules():
    agent = [(0, 5), (5.5, 12), (20, 21), (30, 40)]
    customer = [(4.5, 4.9), (11, 16), (20.5, 20.8), (33, 34.5), (39, 45)]
    t = TurnTracker()
    # Feed in pieces as the segments would become final.
    t.add([seg(*agent[0])], [])
    t.add([], [seg(*customer[0])])
    t.add([seg(*agent[1])], [seg(*customer[1])])
    t.add([seg(*a) for a in agent[2:]], [seg(*c) for c in customer[2:]])
    t.finish()
    offline = classify_overlaps([tuple(x / 100 for x in seg(*a)) for a in agent],
                                [tuple(x / 100 for x in seg(*c)) for c in customer])
    assert [(o.start_s, o.end_s, o.kind, o.by) for o in t.overlaps] == \
        [(o.start_s, o.end_s, o.kind, o.by) for o in offline]
    assert len(t.overlaps) == 5


def test_segmenter_bridges_pauses_shorter_than_200ms():
    s = Segmenter()
    out = s.add([seg(0, 1), seg(1.15, 2)])  # 150 ms pause → bridged
    out += s.add([seg(2.25, 3)])  # 250 ms pause → new segment
    out += s.advance(f(3.5), None)
    assert out == [seg(0, 2), seg(2.25, 3)]


def test_segmenter_waits_for_an_open_stretch_that_may_join():
    s = Segmenter()
    assert s.add([seg(0, 1)]) == []
    assert s.advance(f(1.3), next_start=f(1.1)) == []  # stretch opened 100 ms after: will join
    assert s.add([seg(1.1, 2)]) == []
    assert s.advance(f(2.3), None) == [seg(0, 2)]


def test_segmenter_waits_for_a_stretch_that_will_open_backdated():
    """The detector opens a stretch a few frames after its (backtracked) start; a pending segment
    must not be finalised while such a stretch can still start within the bridging pause."""
    s = Segmenter()
    assert s.add([seg(0, 1)]) == []
    # 1.21 s now, no stretch open yet, but one may still start at 1.19 (190 ms pause): wait.
    assert s.advance(f(1.21), next_start=f(1.19)) == []
    assert s.add([seg(1.19, 2)]) == []
    assert s.advance(f(2.3), None) == [seg(0, 2)]


def test_hysteresis_reports_where_a_pending_onset_may_start():
    from pacelight.analysis.activity import ActivitySettings, _Hysteresis

    h = _Hysteresis(ActivitySettings(onset_frames=3, onset_backtrack_s=0.05))
    for t in range(10):
        h.step(t, strong=False, weak=False)
    assert h.earliest_start(10) == 10
    h.step(10, strong=False, weak=True)  # a weak run begins: a stretch may start here
    h.step(11, strong=True, weak=True)
    h.step(12, strong=False, weak=True)
    assert h.open_start is None and h.earliest_start(13) == 10
    h.step(13, strong=True, weak=True)
    h.step(14, strong=True, weak=True)  # third strong frame: opens, backdated to the weak run
    assert h.open_start == 10 and h.earliest_start(15) == 10


def test_monologue_spans_pauses_and_backchannels_but_not_turns():
    t = track([(0, 10), (11, 20), (21.5, 30), (40, 45)], [(5, 5.5), (32, 38)])
    assert t.longest_monologue_s("agent") == pytest.approx(30.0)
    t = track([(0, 10), (11, 20)], [(10.2, 10.9 + 1.0)])  # a real customer turn in between
    assert t.longest_monologue_s("agent") == pytest.approx(10.0)


def test_response_latency_median():
    t = track([(3.5, 6), (10.2, 12), (20, 22)], [(0, 3), (7, 10), (13, 15)])
    assert t.agent_response_latencies_s() == pytest.approx([0.5, 0.2, 5.0])
    assert t.latency_median_s() == pytest.approx(0.5)


def test_hysteresis_block_shortcuts_match_frame_by_frame_steps():
    """``run`` (with its block shortcuts) is exactly ``step`` frame by frame."""
    import numpy as np
    from pacelight.analysis.activity import ActivitySettings, _Hysteresis

    rng = np.random.default_rng(5)
    s = ActivitySettings()
    fast, slow = _Hysteresis(s), _Hysteresis(s)
    t = 0
    for _ in range(3000):
        mode = rng.integers(0, 4)  # silence, speech, mixed, sparse
        p = (0.0, 0.97, 0.6, 0.1)[mode]
        strong = rng.random(5) < p
        weak = strong | (rng.random(5) < p)
        keep = (rng.random(5) < 0.3 * p) if mode == 2 else None
        fast.run(t, strong, weak, keep)
        for i in range(5):
            slow.step(t + i, bool(strong[i]), bool(weak[i]), keep is not None and bool(keep[i]))
        t += 5
        assert fast.earliest_start(t) == slow.earliest_start(t)
    fast.flush(t)
    slow.flush(t)
    got, want = fast.take_closed(), slow.take_closed()
    assert got == want and len(want) > 100


def test_sustain_frames_keep_a_turn_whole_but_never_open_one():
    from pacelight.analysis.activity import ActivitySettings, _Hysteresis

    h = _Hysteresis(ActivitySettings(onset_frames=3, release_hang_s=0.05, sustain_resume_s=0.1))
    t = 0
    for _ in range(10):  # quiet voiced frames alone: nothing opens
        h.step(t, strong=False, weak=True, keep=True)
        t += 1
    assert h.open_start is None and h.closed == []
    for _ in range(5):
        h.step(t, strong=True, weak=True)
        t += 1
    for _ in range(30):  # 300 ms of quiet syllables, far past the 50 ms hang: still one turn
        h.step(t, strong=False, weak=True, keep=True)
        t += 1
    assert h.open_start is not None
    h.step(t, strong=False, weak=False)  # one dip closes it ...
    t += 1
    for _ in range(3):  # ... and sustain frames right after resume it
        h.step(t, strong=False, weak=True, keep=True)
        t += 1
    assert h.open_start is not None
    for _ in range(30):
        h.step(t, strong=False, weak=False)
        t += 1
    h.flush(t)
    segs = h.take_closed()
    assert len(segs) == 2 and segs[1][0] - segs[0][1] == 1  # the dip frame; bridged downstream
