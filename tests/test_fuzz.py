"""Property-based fuzzing (hypothesis) of everything that parses outside input.

Summary parser (MQTT payloads), host → device config, the device TOML settings, the pipeline
config, and the LED serial protocol (host side). Property: never a crash — either a valid object
or a clear rejection (``ValueError`` / ``ConfigError`` with a message; ``None`` for a damaged
LED line). Bounded: ``max_examples`` per test and no deadline, a few thousand cases in all.
"""

from __future__ import annotations

import json
import math

import pytest
from conftest import summary_dict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pacelight.errors import ConfigError

FUZZ = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                database=None)
FEW = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40))
json_values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4)
                           | st.dictionaries(st.text(max_size=12), kids, max_size=4), max_leaves=12)


def _leaf_paths(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaf_paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaf_paths(v, (*prefix, i))
    yield prefix


def _set(obj, path, value):
    if not path:
        return value
    *head, last = path
    cur = obj
    for p in head:
        cur = cur[p]
    cur[last] = value
    return obj


def _delete(obj, path):
    *head, last = path
    cur = obj
    for p in head:
        cur = cur[p]
    del cur[last]
    return obj


# -- call summary -------------------------------------------------------------------------------
def _check_summary(data) -> None:
    from pacelight.summary import CallSummary, parse_summary

    try:
        s = parse_summary(data)
    except ValueError as exc:
        assert str(exc).strip()
        return
    assert isinstance(s, CallSummary)
    again = parse_summary(s.to_json())  # whatever is accepted round-trips
    assert again == s
    assert "transcript" not in s.to_json()


@pytest.mark.parametrize("started_at", [1.5, "1.5", "2026-11-23T09:00:00", "23.11.2026 09:00"])
def test_summary_started_at_must_be_iso_utc_text(started_at):
    # found by the fuzzer: a number was read as a Unix time, a fraction of a second was lost on re-serialising
    from pacelight.summary import parse_summary

    with pytest.raises(ValueError, match="started_at"):
        parse_summary(summary_dict("t-1", "dev-t", started_at=started_at))


def test_summary_started_at_fraction_round_trips_as_whole_seconds():
    from pacelight.summary import parse_summary

    s = parse_summary(summary_dict("t-2", "dev-t", started_at="2026-11-23T09:00:00.5+01:00"))
    assert s.to_dict()["started_at"] == "2026-11-23T08:00:00Z"
    assert parse_summary(s.to_json()) == s
    _check_summary(summary_dict("t-3", "dev-t", started_at=1.5))


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_summary_parser_arbitrary_bytes(data):
    _check_summary(data)


@FUZZ
@given(st.data())
def test_summary_parser_mutated_valid_summaries(data):
    base = summary_dict("fuzz-1", "dev-f")
    paths = [p for p in _leaf_paths(base) if p]
    path = data.draw(st.sampled_from(paths))
    action = data.draw(st.sampled_from(["replace", "delete", "extra"]))
    if action == "replace":
        base = _set(base, path, data.draw(json_values))
    elif action == "delete":
        base = _delete(base, path)
    else:
        target = base
        for p in path[:-1]:
            target = target[p]
        if isinstance(target, dict):
            target[data.draw(st.text(min_size=1, max_size=12))] = data.draw(json_values)
    _check_summary(base)
    text = json.dumps(base, allow_nan=True)
    _check_summary(text.encode())


def test_summary_rejects_a_transcript_and_non_finite_numbers():
    from pacelight.summary import parse_summary

    with pytest.raises(ValueError, match="transcript"):
        parse_summary(summary_dict("p-1", "dev-p", transcript="hello, this is Ann"))
    with pytest.raises(ValueError):
        parse_summary(summary_dict("p-2", "dev-p", audio="UklGRg=="))
    bad = summary_dict("p-3", "dev-p")
    bad["duration_s"] = math.nan
    with pytest.raises(ValueError):
        parse_summary(bad)


# -- host → device config -----------------------------------------------------------------------
@FUZZ
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode())
       | st.fixed_dictionaries({}, optional={
           "version": scalars, "pace_target": st.dictionaries(st.sampled_from(["min_syl_s", "max_syl_s", "x"]),
                                                              scalars, max_size=3),
           "agent_talk_ratio_max": scalars,
           "cues": st.dictionaries(st.sampled_from(["enabled", "overtalk_after_s", "monologue_after_s",
                                                    "pace_window_s", "led_brightness", "y"]), scalars,
                                   max_size=4)}))
def test_device_config_parser(data):
    from pacelight.edge.device_config import DeviceConfig, parse_device_config

    try:
        cfg = parse_device_config(data)
    except ValueError as exc:
        assert str(exc).strip()
        return
    assert isinstance(cfg, DeviceConfig)
    if cfg.pace_target is not None:
        assert math.isfinite(cfg.pace_target.min_syl_s) and cfg.pace_target.min_syl_s < cfg.pace_target.max_syl_s
    assert parse_device_config(cfg.model_dump_json()) == cfg


# -- device settings (TOML) -----------------------------------------------------------------------
def _edge_keys():
    from dataclasses import fields

    from pacelight.edge.settings import EdgeSettings

    s = EdgeSettings()
    out = {}
    for f in fields(s):
        if f.name == "pipeline":
            continue
        out[f.name] = [g.name for g in fields(getattr(s, f.name))] + ["bogus"]
    return out


EDGE_KEYS = _edge_keys()
toml_scalars = (st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30))


@st.composite
def edge_docs(draw):
    doc = {}
    for section in draw(st.lists(st.sampled_from([*EDGE_KEYS, "nope"]), max_size=4, unique=True)):
        keys = EDGE_KEYS.get(section, ["k"])
        doc[section] = draw(st.dictionaries(st.sampled_from(keys), toml_scalars | st.lists(toml_scalars, max_size=2),
                                            max_size=4))
    if draw(st.booleans()):
        doc[draw(st.sampled_from(["device", "mqtt"]))] = draw(toml_scalars)  # a section that is not a table
    return doc


@FUZZ
@given(edge_docs())
def test_edge_settings_parser(doc):
    from pacelight.edge.settings import EdgeSettings, parse_settings

    try:
        s = parse_settings(doc, "fuzz.toml")
    except ConfigError as exc:
        assert str(exc).strip() and "\n" not in str(exc)
        return
    assert isinstance(s, EdgeSettings)


@FEW
@given(st.text(max_size=200))
def test_toml_reader_rejects_garbage_with_config_error(tmp_path_factory, text):
    from pacelight.config import read_toml
    from pacelight.edge.settings import load_settings

    p = tmp_path_factory.getbasetemp() / "fuzz-config.toml"
    p.write_text(text, encoding="utf-8")
    try:
        read_toml(p)
        load_settings(p)
    except ConfigError as exc:
        assert str(p) in str(exc)


@FEW
@given(st.dictionaries(st.sampled_from(["language", "vad_aggressiveness", "bogus", "cues", "tone_enabled"]),
                       json_values, max_size=3))
def test_pipeline_config_section(section):
    from pacelight.analysis.pipeline import PipelineSettings
    from pacelight.config import _apply

    try:
        _apply(PipelineSettings(), section, "pipeline")
    except ConfigError as exc:
        assert str(exc).startswith("pipeline")


# -- LED serial protocol (host side) --------------------------------------------------------------
@FUZZ
@given(st.binary(max_size=120))
def test_led_reply_parser_never_crashes(line):
    from pacelight.cues.ledproto import Reply, parse

    r = parse(line)
    assert r is None or (isinstance(r, Reply) and r.seq >= 0 and r.words)


@FUZZ
@given(st.integers(min_value=0, max_value=65535),
       st.lists(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12),
                min_size=1, max_size=6),
       st.data())
def test_led_frame_roundtrip_and_single_bit_errors_detected(seq, words, data):
    from pacelight.cues.ledproto import MAX_LINE, Reply, frame, parse

    body = " ".join(words)
    try:
        line = frame(seq, body)
    except ValueError as exc:
        assert "too long" in str(exc)
        return
    assert len(line) <= MAX_LINE
    assert parse(line) == Reply(seq, tuple(body.split()))
    # any single flipped bit before the newline is detected (CRC-8) or breaks the syntax
    pos = data.draw(st.integers(min_value=0, max_value=len(line) - 2))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    damaged = bytearray(line)
    damaged[pos] ^= 1 << bit
    r = parse(bytes(damaged))
    assert r is None or r == Reply(seq, tuple(body.split()))  # e.g. a space turned into a tab


def test_led_frame_rejects_non_ascii_and_overlong():
    from pacelight.cues.ledproto import frame

    with pytest.raises(ValueError):
        frame(1, "CUE pace é")
    with pytest.raises(ValueError, match="too long"):
        frame(1, "X" * 200)


# -- LED serial protocol (firmware side, under the MicroPython unix port) ---------------------------
MP_PARSER = r"""
import sys
import ubinascii
import pl_proto
n_ok = n_err = 0
for raw in sys.stdin:
    raw = raw.strip()
    if not raw:
        continue
    buf = bytearray(ubinascii.unhexlify(raw))
    try:
        seq, cmd, args = pl_proto.parse(buf, len(buf))
        print("OK", seq, cmd, " ".join(args))
    except ValueError as e:
        # the firmware replies with e.args[0] (code) and e.args[1] (seq): both must exist
        print("ERR", e.args[0], e.args[1])
"""


def test_firmware_parser_under_micropython_never_crashes(tmp_path):
    """~3,000 random, framed, bit-flipped and valid-CRC-garbage lines through the firmware's parser."""
    import random
    import subprocess

    from _ledfw_helpers import LEDFW, micropython_bin
    from pacelight.cues.ledproto import MAX_LINE, crc8, frame

    mp = micropython_bin()
    if mp is None:
        pytest.skip("micropython unix port not installed")
    rng = random.Random(20261123)
    lines: list[tuple[bytes, tuple | None]] = []
    words = ["HB", "HELLO", "CUE", "pace", "overtalk", "BRIGHT", "OFF", "x", "255", "-1"]
    for _ in range(800):  # valid frames: must parse to the same (seq, cmd, args)
        seq = rng.randrange(0, 65536)
        body = " ".join(rng.choice(words) for _ in range(rng.randint(1, 5)))
        try:
            line = frame(seq, body).rstrip(b"\n")
        except ValueError:
            continue
        lines.append((line, (seq, body.split()[0], body.split()[1:])))
        flipped = bytearray(line)  # one bit flipped
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        lines.append((bytes(flipped), None))
    for _ in range(800):  # random bytes, some with a correct CRC over garbage (incl. non-UTF-8)
        head = b"PL1 %d " % rng.randrange(0, 99999) + bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
        head = head.replace(b"\n", b" ").replace(b"\r", b" ")
        lines.append((head + b" *%02X" % crc8(head), None))
        junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, MAX_LINE)))
        lines.append((junk.replace(b"\n", b"").replace(b"\r", b"") or b"x", None))
    proc = subprocess.run([mp, "-c", MP_PARSER], input="\n".join(line.hex() for line, _ in lines) + "\n",
                          capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "MICROPYPATH": f".frozen:{LEDFW}"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout.splitlines()
    assert len(out) == len(lines)
    for (line, want), got in zip(lines, out, strict=True):
        kind, *rest = got.split(" ")
        assert kind in ("OK", "ERR"), got
        if kind == "ERR":
            assert rest[0] in ("SYNTAX", "CRC", "VER") and rest[1].isdigit(), (line, got)
        if want is not None:
            seq, cmd, args = want
            assert got.split() == ["OK", str(seq), cmd, *args], (line, got)
