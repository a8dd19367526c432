"""REST API and supervisor dashboard of the aggregator.

``serve(store, host, port, stop_event)`` runs the HTTP server (uvicorn) in the calling thread
until ``stop_event`` is set; the aggregator starts it in a named thread for ``--http``.
:func:`create_app` builds the FastAPI app (OpenAPI at ``/docs`` and ``/openapi.json``).

Roles: ``supervisor`` sees calls, agents, teams and their aggregates; ``it`` sees the fleet
(devices), the quarantine, and manages agents, teams and desk assignments; both see the
overview and the agent/team lists. ``/healthz`` needs no login; everything else does
(401 without a session, 403 with the wrong role).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pacelight_host.store import Store

log = logging.getLogger(__name__)


def create_app(store: Store, settings=None):
    from pacelight_host.api.app import build_app

    return build_app(store, settings)


def serve(store: Store, host: str, port: int, stop_event: threading.Event, settings=None) -> None:
    """Serve the API and dashboard on HOST:PORT until ``stop_event`` is set."""
    import uvicorn

    app = create_app(store, settings)
    config = uvicorn.Config(app, host=host, port=int(port), log_level="warning", lifespan="off",
                            access_log=False, server_header=False)
    server = uvicorn.Server(config)

    def _watch() -> None:
        stop_event.wait()
        server.should_exit = True

    threading.Thread(target=_watch, name="pacelight-http-stop", daemon=True).start()
    log.info("dashboard on http://%s:%d/", host, port)
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind
        log.error("dashboard could not listen on %s:%d", host, port)
        stop_event.set()
    finally:
        log.info("dashboard stopped")
