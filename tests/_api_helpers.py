"""Helpers for the API/dashboard tests: a store with agents, teams, desks and calls."""

from __future__ import annotations

from conftest import build_summary, utc


def call(call_id: str, device: str, started: str, *, ratio_agent_s: float = 80.0, customer_s: float = 70.0,
         pace: float | None = 4.6, interruptions: int = 1, segments: bool = False, **kw):
    extra = {}
    if segments:
        extra = {"segments": {"agent": [[1.0, 20.0], [40.0, 90.0]], "customer": [[19.0, 41.0], [95.0, 150.0]]},
                 "overlaps": [{"start": 19.0, "end": 20.0, "kind": "backchannel", "by": "customer"},
                              {"start": 40.0, "end": 41.0, "kind": "interruption", "by": "agent"}]}
    return build_summary(
        call_id, device, started_at=started,
        talk={"agent_s": ratio_agent_s, "customer_s": customer_s, "silence_s": 30.0, "overlap_s": 2.0,
              "agent_ratio": ratio_agent_s / (ratio_agent_s + customer_s)},
        overtalk={"events": 3, "agent_interruptions": interruptions, "customer_interruptions": 2,
                  "agent_backchannels": 2, "customer_backchannels": 4},
        pace={"agent_syl_s": pace, "customer_syl_s": 4.1}, **extra, **kw)


def seed_registry(q) -> None:
    """Teams blue (ann, bob) and green (cid); desks dev-1, dev-2, dev-3."""
    q.upsert_team("blue", "Blue team")
    q.upsert_team("green", "Green team")
    q.upsert_agent("ann", "Ann Archer", "blue")
    q.upsert_agent("bob", "Bob Baker", "blue")
    q.upsert_agent("cid", "Cid Cole", "green")
    q.assign("dev-1", "ann", utc("2026-09-01T00:00:00Z"))
    q.assign("dev-2", "bob", utc("2026-09-01T00:00:00Z"))
    q.assign("dev-3", "cid", utc("2026-09-01T00:00:00Z"))
