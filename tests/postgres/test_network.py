"""Network settings reach every connection the store opens, as the sockets themselves show.

Defaults where the connection string sets nothing, the connection string's own settings
otherwise, and the store's arguments over both.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import psycopg
import pytest

from esframework.postgres import PostgresEventStore
from tests.postgres.test_connection_options import opened, show, with_options


def socket_settings(connection: psycopg.Connection[Any]) -> dict[str, int]:
    """What the kernel applies to the connection's TCP socket."""
    with socket.socket(fileno=os.dup(connection.fileno())) as sock:
        return {
            "keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            "keepidle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            "keepintvl": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            "keepcnt": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            "user_timeout": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
        }


def network_of(store: PostgresEventStore) -> dict[str, tuple[dict[str, int], str]]:
    """The socket settings and connect_timeout of the pooled, lease and listener connections."""

    def seen(connection: psycopg.Connection[Any]) -> tuple[dict[str, int], str]:
        timeout = connection.info.get_parameters().get("connect_timeout", "")
        return socket_settings(connection), timeout

    result = {}
    with store.connection() as conn:
        result["pool"] = seen(conn)
    lease = store.lease("network-test")
    try:
        assert lease.acquire()
        assert lease._connection is not None
        result["lease"] = seen(lease._connection)
    finally:
        lease.release()
    with store.listener() as listener:
        assert listener._connection is not None
        result["listener"] = seen(listener._connection)
    return result


def tcp(dsn: str) -> str:
    """The DSN over TCP: keepalives and tcp_user_timeout do not apply to a Unix socket."""
    host = psycopg.conninfo.conninfo_to_dict(dsn).get("host")
    if host is not None and str(host).startswith("/"):
        pytest.skip("the test server is reached through a Unix socket")
    return dsn


DEFAULTS = {"keepalive": 1, "keepidle": 10, "keepintvl": 5, "keepcnt": 3, "user_timeout": 20000}


@pytest.mark.parametrize("how", ["conninfo", "pool"])
def test_connections_get_the_network_defaults(
    postgres_dsn: str, postgres_schema: str, how: str
) -> None:
    with opened(tcp(postgres_dsn), postgres_schema, how) as store:
        seen = network_of(store)
    if how == "pool":  # a pool given to the store keeps the settings it was made with
        assert seen.pop("pool")[0]["user_timeout"] == 0
    assert seen == dict.fromkeys(seen, (DEFAULTS, "10"))


@pytest.mark.parametrize("how", ["conninfo", "pool"])
def test_the_connection_strings_network_settings_and_options_are_kept(
    postgres_dsn: str, postgres_schema: str, how: str
) -> None:
    dsn = psycopg.conninfo.make_conninfo(
        with_options(tcp(postgres_dsn), "-c search_path=reporting,public"),
        connect_timeout="4",
        keepalives_idle="33",
        tcp_user_timeout="7000",
    )
    with opened(dsn, postgres_schema, how) as store:
        seen = network_of(store)
        with store.connection() as conn:
            assert show(conn, "search_path") == "reporting,public"
    kept = {**DEFAULTS, "keepidle": 33, "user_timeout": 7000}
    if how == "pool":  # the given pool's own connections: only what its string says
        assert seen.pop("pool")[0]["keepintvl"] != DEFAULTS["keepintvl"]
    assert seen == dict.fromkeys(seen, (kept, "4"))


def test_the_stores_arguments_win_over_the_connection_string(
    postgres_dsn: str, postgres_schema: str
) -> None:
    dsn = psycopg.conninfo.make_conninfo(
        tcp(postgres_dsn), connect_timeout="4", tcp_user_timeout="7000"
    )
    with opened(dsn, postgres_schema, "conninfo", connect_timeout=3, tcp_user_timeout=1.5) as store:
        seen = network_of(store)
    assert seen == dict.fromkeys(seen, ({**DEFAULTS, "user_timeout": 1500}, "3"))


@pytest.mark.parametrize("how", ["conninfo", "pool"])
def test_statement_timeout_cancels_a_long_statement_over_the_connection_strings(
    postgres_dsn: str, postgres_schema: str, how: str
) -> None:
    dsn = with_options(postgres_dsn, "-c statement_timeout=60000")
    with opened(postgres_dsn, postgres_schema, how) as store, store.connection() as conn:
        assert show(conn, "statement_timeout") == "0"  # not set unless asked for
    with opened(dsn, postgres_schema, how, statement_timeout=0.2) as store:
        with store.connection() as conn:
            assert show(conn, "statement_timeout") == "200ms"
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute("SELECT pg_sleep(30)")
        lease = store.lease("network-test")
        try:  # the lease's session is idle by design: no statement_timeout to end it
            assert lease.acquire()
            assert lease._connection is not None
            assert show(lease._connection, "statement_timeout") == "1min"
        finally:
            lease.release()


def test_a_negative_statement_timeout_is_refused(postgres_dsn: str) -> None:
    with pytest.raises(ValueError, match="statement_timeout"):
        PostgresEventStore(postgres_dsn, statement_timeout=-1)
