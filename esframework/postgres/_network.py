"""Network defaults for the connections the PostgreSQL stores open: no call waits forever.

Without them, libpq waits as long as the operating system does: a connection attempt to an
unreachable server for minutes, and a request on a connection whose packets are dropped
(a partition, a dead router, a frozen server host) until TCP gives up, which is 15 minutes
of retransmissions on Linux, or never while the store waits for an answer it sent nothing
for. These settings bound each: the pool then reports the server unreachable, and the
store's retries and `pool_timeout` engage.
"""

from __future__ import annotations

import math
import os
from typing import Final

import psycopg.conninfo

from esframework.errors import InvalidConnectionStringError

__all__ = ["NETWORK_DEFAULTS", "with_network_defaults"]

NETWORK_DEFAULTS: Final = {
    # Seconds to wait for a connection (libpq rounds below 2 up to 2).
    "connect_timeout": "10",
    # Probe an idle connection after 10 s, every 5 s, and drop it after 3 unanswered
    # probes: a listener or an idle pooled connection notices a dead peer in 25 s.
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    # Milliseconds sent data may stay unacknowledged before the connection is dropped:
    # bounds a request (an append, a lease renewal) sent into a partition.
    "tcp_user_timeout": "20000",
}
"""What the stores set on their connections where the connection string sets nothing."""


def with_network_defaults(
    conninfo: str,
    *,
    connect_timeout: float | None = None,
    tcp_user_timeout: float | None = None,
) -> str:
    """`conninfo` with `NETWORK_DEFAULTS` for what it leaves out, and the given settings.

    The connection string's own settings win over the defaults (and `PGCONNECT_TIMEOUT`
    over the default connect_timeout); the arguments, in seconds, win over both.
    """
    try:
        given = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as error:
        reason = str(error).replace(conninfo, "...") if conninfo else str(error)
        msg = f"not a PostgreSQL connection string or URL: {reason}"
        raise InvalidConnectionStringError(msg) from None
    settings = {name: value for name, value in NETWORK_DEFAULTS.items() if name not in given}
    if "PGCONNECT_TIMEOUT" in os.environ:
        settings.pop("connect_timeout", None)
    if connect_timeout is not None:
        settings["connect_timeout"] = str(math.ceil(connect_timeout))
    if tcp_user_timeout is not None:
        settings["tcp_user_timeout"] = str(round(tcp_user_timeout * 1000))
    return psycopg.conninfo.make_conninfo(conninfo, **settings) if settings else conninfo
