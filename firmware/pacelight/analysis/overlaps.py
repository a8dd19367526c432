"""Overlap classification — the CONTRACT section 2 rules, in one place.

An *overlap* is a stretch where both parties talk. It is attributed to the party who started
it: the one whose talk segment began later (they came in while the other was talking).

* **backchannel** — the intruder's talk is short (≤ ``BACKCHANNEL_MAX_S``) and the other keeps
  talking past it ("mm-hm"): not an interruption.
* **interruption** — the intruder keeps talking ≥ ``INTERRUPT_MIN_S`` and the other stops within
  ``INTERRUPT_YIELD_S`` of the intruder's start.
* **overlap** — anything else (both keep talking, or a short intrusion the other stops at).

The same function serves the streaming turn tracker (on a finished overlap) and the simulator's
ground truth (on clean segments), so the definitions cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence

from pacelight.events import OverlapEvent, Party

BACKCHANNEL_MAX_S = 1.0
INTERRUPT_MIN_S = 1.0
INTERRUPT_YIELD_S = 2.0

Segment = tuple[float, float]


def classify(intruder: Segment, other: Segment) -> str:
    """Kind of the overlap between the intruder's segment and the other's (both closed)."""
    i_start, i_end = intruder
    o_start, o_end = other
    if i_end - i_start <= BACKCHANNEL_MAX_S and o_end > i_end:
        return "backchannel"
    if i_end - i_start >= INTERRUPT_MIN_S and o_end - i_start <= INTERRUPT_YIELD_S:
        return "interruption"
    return "overlap"


def decidable(intruder: Segment, other: Segment, now_s: float, i_open: bool, o_open: bool) -> bool:
    """Whether ``classify`` can already give its final answer while segments may still be open.

    Open segments have their end set to ``now_s``. The answer is final once neither party's
    future can change which rule applies.
    """
    if not i_open and not o_open:
        return True
    i_start = intruder[0]
    if i_open and now_s - i_start <= BACKCHANNEL_MAX_S:
        return False  # could still be a backchannel
    if o_open and now_s - i_start <= INTERRUPT_YIELD_S:
        return False  # the other may still yield in time
    if i_open and not o_open:
        # Other stopped in time and the intruder is already past the backchannel length.
        return now_s - i_start >= INTERRUPT_MIN_S
    return True  # the other is still talking 2 s after the intrusion: a plain overlap


def attribute(agent_seg: Segment, customer_seg: Segment) -> Party:
    """Who started the overlap of these two segments (later start; ties go to the customer)."""
    return "agent" if agent_seg[0] > customer_seg[0] else "customer"


def classify_overlaps(agent: Sequence[Segment], customer: Sequence[Segment]) -> list[OverlapEvent]:
    """All overlaps between two sorted, disjoint segment lists, classified and attributed."""
    out: list[OverlapEvent] = []
    i = j = 0
    while i < len(agent) and j < len(customer):
        a, c = agent[i], customer[j]
        start, end = max(a[0], c[0]), min(a[1], c[1])
        if end > start:
            by = attribute(a, c)
            intruder, other = (a, c) if by == "agent" else (c, a)
            out.append(OverlapEvent(round(start, 3), round(end, 3), classify(intruder, other), by))  # type: ignore[arg-type]
        if a[1] <= c[1]:
            i += 1
        else:
            j += 1
    return out
