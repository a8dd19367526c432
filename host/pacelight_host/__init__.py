"""pacelight host: the aggregator (embedded broker, MQTT ingest, storage), REST API and dashboard.

* :mod:`pacelight_host.store` — :class:`~pacelight_host.store.Store` (SQLite or PostgreSQL).
* :mod:`pacelight_host.ingest` — :class:`~pacelight_host.ingest.Aggregator` (MQTT → store, acks).
* :mod:`pacelight_host.broker` — the embedded mosquitto child process.
* :mod:`pacelight_host.api` — REST API/dashboard (``serve(store, host, port, stop_event)``).
"""
