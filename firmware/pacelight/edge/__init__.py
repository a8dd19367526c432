"""Device edge: the on-disk outbox of call summaries and the MQTT publisher.

* :mod:`pacelight.edge.outbox` — SQLite outbox; a summary is deleted only on the host's
  application-level ack (CONTRACT.md section 4), never on PUBACK.
* :mod:`pacelight.edge.publisher` — paho-mqtt 2.x (MQTT 5, QoS 1) client thread: status/LWT,
  reconnect with bounded exponential backoff and jitter, resend of unacked summaries, config.
* :mod:`pacelight.edge.mqtt_url` — ``mqtt://`` / ``mqtts://`` broker URLs.
* :mod:`pacelight.edge.device_config` — the validated host → device config model.
* :mod:`pacelight.edge.paths` — the default data directory shared by device tools and the host.
"""
