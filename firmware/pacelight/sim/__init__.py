"""Call simulator: two-party call-centre dialogue with exact ground truth (``pacelight simulate``).

Heavy parts are imported lazily; ``pacelight.sim.syllables`` and ``pacelight.sim.tts`` are the
building blocks shared with the pace benchmark.
"""

_LAZY = {"CallSpec", "RateChange", "SimulatedCall", "simulate_call", "write_calls", "write_call", "call_seed"}


def __getattr__(name: str):  # lazy: keep ``import pacelight.sim`` cheap
    if name in _LAZY:
        from pacelight.sim import call

        return getattr(call, name)
    raise AttributeError(name)
