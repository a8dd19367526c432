"""Broker URLs: ``mqtt://HOST:PORT`` (plain TCP) and ``mqtts://HOST:PORT`` (TLS)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from pacelight.errors import InputError

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class BrokerURL:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerURL:
    """Parse ``mqtt[s]://[user[:password]@]HOST[:PORT]`` (raises InputError)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InputError(f"bad broker URL {url!r}: {exc}") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise InputError(f"bad broker URL {url!r}: scheme must be mqtt:// or mqtts://")
    if not parts.hostname:
        raise InputError(f"bad broker URL {url!r}: missing host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InputError(f"bad broker URL {url!r}: unexpected path or query")
    return BrokerURL(
        host=parts.hostname,
        port=port or DEFAULT_PORTS[parts.scheme],
        tls=parts.scheme == "mqtts",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def parse_listen(value: str, default_port: int = 1883) -> tuple[str, int]:
    """Parse ``HOST:PORT`` (``[::1]:PORT`` for IPv6) for listeners."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_s = rest.lstrip(":")
    else:
        host, _, port_s = value.rpartition(":") if ":" in value else (value, "", "")
    try:
        port = int(port_s) if port_s else default_port
    except ValueError:
        raise InputError(f"bad HOST:PORT {value!r}") from None
    if not host or not 0 < port < 65536:
        raise InputError(f"bad HOST:PORT {value!r}")
    return host, port
