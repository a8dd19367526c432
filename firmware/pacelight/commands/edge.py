"""`pacelight edge run|replay` — the appliance service and its file-fed twin.

``run``: live capture (config ``[capture]``), call detection, real-time pipeline, LED outputs,
outbox + MQTT publisher, status file; SIGHUP reloads the config (next call), SIGTERM/SIGINT
flush the current call as a partial summary and exit 0.

``replay CALL.wav``: the same live path (ring buffer, analysis thread, cue outputs, outbox) fed
by a fake sound card that plays the file in real-time-sized chunks; the whole file is one call.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

HELP = "the appliance service (run) and the live path fed from a file (replay)"

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    p = sub.add_parser("edge", help=HELP, description=HELP + ".")
    esub = p.add_subparsers(dest="edge_command", metavar="{run,replay}")
    esub.required = True

    r = esub.add_parser("run", help="capture, analyse and publish calls (the pacelight-edge service)",
                        description="Runs the appliance: live capture, call detection, LED cues, outbox and "
                        "MQTT. SIGHUP reloads the config (applies to the next call); SIGTERM flushes the "
                        "current call as a partial summary and exits.")
    r.add_argument("--config", metavar="FILE", default="/etc/pacelight/config.toml",
                   help="device config (TOML); default /etc/pacelight/config.toml")
    r.set_defaults(func=run)

    rp = esub.add_parser("replay", help="run the live path on a recorded call (WAV) and queue its summary",
                         description="Plays CALL.wav through the appliance's live path (fake sound card, ring "
                         "buffer, analysis thread, LED outputs, outbox). The whole file is one call.")
    rp.add_argument("wav", metavar="CALL.wav", help="PCM 16-bit or float WAV, 8-48 kHz, mono or stereo")
    rp.add_argument("--speed", default="1", help="'1' = real time (default), 'max' = as fast as possible; "
                    "any positive factor is accepted")
    rp.add_argument("--json", action="store_true", help="print the queued summary (JSON) and nothing else")
    rp.add_argument("--config", metavar="FILE", help="device config (TOML): device id, outputs, pipeline, cues")
    rp.add_argument("--outbox", metavar="PATH", help="outbox SQLite file (default: the config's outbox, or "
                    "edge-outbox.sqlite in the data directory)")
    rp.add_argument("--detect-calls", action="store_true",
                    help="split the file into calls by activity (as 'run' does) instead of one call")
    rp.set_defaults(func=replay)


def _speed(text: str) -> float:
    from pacelight.errors import InputError

    if text == "max":
        return 0.0
    try:
        v = float(text)
    except ValueError:
        raise InputError(f"--speed must be 'max' or a positive number, not {text!r}") from None
    if not v > 0 or v > 1000:
        raise InputError(f"--speed must be 'max' or within (0, 1000], not {text!r}")
    return v


def replay(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from pacelight.audio.wavfile import probe
    from pacelight.edge.outbox import Outbox
    from pacelight.edge.paths import default_data_dir
    from pacelight.edge.runtime import EdgeRuntime, make_sinks
    from pacelight.edge.settings import load_settings

    speed = _speed(args.speed)
    settings = load_settings(args.config)
    info = probe(args.wav)  # one-line InputError for bad files, before anything starts
    settings = replace(
        settings,
        capture=replace(settings.capture, backend="wav", wav_path=str(info.path), wav_speed=speed,
                        wav_after_eof="stop", second_device=""),
        calls=replace(settings.calls, detect="activity" if args.detect_calls else "off"),
        health=replace(settings.health, status_path=""),
    )
    if args.outbox:
        outbox_path = Path(args.outbox)
    elif args.config and (settings.device.outbox_path or settings.device.data_dir):
        outbox_path = settings.device.outbox_file()
    else:
        outbox_path = default_data_dir() / "edge-outbox.sqlite"
    terminal = sys.stdout if (sys.stdout.isatty() and not args.json) else None
    sinks = make_sinks(settings.outputs, terminal_stream=terminal)
    summaries: list = []
    with Outbox(outbox_path, settings.device.outbox_max_items) as outbox:
        rt = EdgeRuntime(settings, outbox=outbox, sinks=sinks, on_summary=summaries.append)
        rt.start()
        try:
            while not rt.wait(0.2):
                pass
        except KeyboardInterrupt:
            log.info("interrupted: flushing the call as partial")
        finally:
            rt.stop()
            for s in sinks:
                s.close()
        if rt.failed:
            from pacelight.errors import PacelightError

            raise PacelightError(rt.last_error or "analysis failed")
        if args.json:
            for s in summaries:
                sys.stdout.write(s.to_json() + "\n")
        else:
            from pacelight.commands.analyze import render_report

            for s in summaries:
                sys.stdout.write(render_report(s, info.path.name))
                sys.stdout.write(f"  queued      {s.call_id} in {outbox_path} "
                                 f"(xruns {rt.capture.xruns}, tone skips {rt.tone_skips})\n")
    return 0


def run(args: argparse.Namespace) -> int:
    from pacelight.edge.runtime import EdgeRuntime
    from pacelight.edge.settings import load_settings
    from pacelight.errors import PacelightError

    settings = load_settings(args.config)
    if settings.capture.backend == "pyaudio":
        import importlib.util

        if importlib.util.find_spec("pyaudio") is None:
            raise PacelightError("live capture needs PyAudio: pip install 'pacelight[audio]' "
                                 "(Debian: apt install portaudio19-dev first)")
    publisher = _make_publisher(settings)
    rt = EdgeRuntime(settings, publisher=None)
    if publisher is not None:
        rt.publisher = publisher(rt.outbox, rt.apply_host_config)  # host config → cues, next call
    stop = threading.Event()
    hup = threading.Event()

    def on_term(signum, frame):
        log.info("signal %d: stopping", signum)
        stop.set()

    def on_hup(signum, frame):
        hup.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, on_hup)
    rt.start()
    try:
        while not stop.is_set() and not rt.done.is_set():
            stop.wait(0.2)
            if hup.is_set():
                hup.clear()
                try:
                    rt.request_reload(load_settings(args.config))
                except PacelightError as exc:
                    log.error("config reload rejected, keeping the current config: %s", exc)
                    rt.last_error = f"config reload rejected: {exc}"
    finally:
        rt.stop()
    log.info("edge runtime stopped (%d calls queued)", rt.calls_completed)
    if rt.failed:  # systemd restarts us (Restart=on-failure); the call so far is in the outbox
        raise PacelightError(rt.last_error or "analysis failed")
    return 0


def _make_publisher(settings):
    """A factory ``(outbox, on_config) -> Publisher`` for ``[mqtt]``, or None without a broker."""
    m = settings.mqtt
    if not m.broker:
        return None
    from pathlib import Path

    from pacelight.edge.mqtt_url import parse_broker_url
    from pacelight.edge.publisher import Publisher
    from pacelight.errors import ConfigError

    try:
        url = parse_broker_url(m.broker)
    except ValueError as exc:
        raise ConfigError(f"mqtt.broker: {exc}") from None
    password = None
    if m.password_file:
        try:
            password = Path(m.password_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"mqtt.password_file: {exc.strerror}: {m.password_file}") from None
    device_id = settings.device.device_id

    def make(outbox, on_config):
        return Publisher(device_id, url, outbox, username=m.username or (device_id if password else None),
                         password=password, ca_file=m.ca_file or None, cert_file=m.cert_file or None,
                         key_file=m.key_file or None, on_config=on_config)

    return make



make_publisher = _make_publisher  # public name (the demo publishes device outboxes with it)
