"""The bank's HTTP API, driven through an ASGI client, against PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from esframework.postgres import AsyncPostgresEventStore, PostgresEventStore
from examples.bank.domain import FORGOTTEN_OWNER
from examples.bank.http import app, create_app
from examples.bank.worker import build

Client = httpx.AsyncClient


def run_api(dsn: str, schema: str, scenario: Callable[[Client], Awaitable[None]]) -> None:
    async def main() -> None:
        async with AsyncPostgresEventStore(dsn, schema=schema) as store:
            transport = httpx.ASGITransport(app=create_app(store))
            async with httpx.AsyncClient(transport=transport, base_url="http://bank") as client:
                await scenario(client)

    asyncio.run(main())


async def open_funded(client: Client, account: str, amount: str = "100.00") -> None:
    response = await client.post(
        "/accounts", json={"id": account, "owner": account.title(), "currency": "EUR"}
    )
    assert response.status_code == 201, response.text
    if Decimal(amount):
        response = await client.post(f"/accounts/{account}/deposits", json={"amount": amount})
        assert response.status_code == 200, response.text


def test_accounts_and_errors(postgres_store: PostgresEventStore, postgres_dsn: str) -> None:
    """Open, deposit, withdraw and read; each kind of bad request gets its status."""

    async def scenario(client: Client) -> None:
        await open_funded(client, "alice")
        account = (await client.get("/accounts/alice")).json()
        assert account == {
            "id": "alice",
            "owner": "Alice",
            "customer_id": "alice",
            "currency": "EUR",
            "balance": "100.00",
            "status": "open",
            "version": 2,
        }
        withdrawn = await client.post("/accounts/alice/withdrawals", json={"amount": "30.25"})
        assert withdrawn.json()["balance"] == "69.75"

        async def status(method: str, url: str, **kwargs: Any) -> tuple[int, str]:
            response = await client.request(method, url, **kwargs)
            return response.status_code, response.json()["error"]

        assert await status("GET", "/accounts/nobody") == (
            404,
            "Account 'nobody' not found: the stream has no events",
        )
        code, message = await status(
            "POST", "/accounts", json={"id": "alice", "owner": "A", "currency": "EUR"}
        )
        assert (code, message) == (409, "account 'alice' already exists")  # as on the CLI
        code, message = await status("POST", "/accounts/alice/withdrawals", json={"amount": "1000"})
        assert (code, message) == (422, "cannot withdraw 1000 EUR: the balance is 69.75")
        assert (await status("POST", "/accounts/alice/deposits", json={"amount": "-5"}))[0] == 422
        assert (await status("POST", "/accounts/alice/deposits", json={"amount": 5.5})) == (
            400,
            'amounts are strings, like "12.50"',
        )
        assert (await status("POST", "/accounts/alice/deposits", json={}))[1] == (
            "missing field(s): amount"
        )
        assert (await status("POST", "/accounts/alice/deposits", content=b"{"))[0] == 400

    run_api(postgres_dsn, postgres_store.schema, scenario)


def test_stale_versions_and_races_are_409(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    """A stale If-Match, or a concurrent change, answers 409; nothing is lost or doubled."""

    async def scenario(client: Client) -> None:
        await open_funded(client, "bob", "0")
        first = await client.post(
            "/accounts/bob/deposits", json={"amount": "1"}, headers={"If-Match": '"1"'}
        )
        assert first.status_code == 200
        stale = await client.post(
            "/accounts/bob/deposits", json={"amount": "1"}, headers={"If-Match": '"1"'}
        )
        assert stale.status_code == 409
        assert stale.json()["actual_version"] == 2
        fresh = await client.post(
            "/accounts/bob/deposits", json={"amount": "1"}, headers={"If-Match": '"2"'}
        )
        assert fresh.status_code == 200
        responses = await asyncio.gather(
            *(client.post("/accounts/bob/deposits", json={"amount": "1"}) for _ in range(20))
        )
        codes = [r.status_code for r in responses]
        assert set(codes) <= {200, 409}
        balance = Decimal((await client.get("/accounts/bob")).json()["balance"])
        assert balance == 2 + codes.count(200)

    run_api(postgres_dsn, postgres_store.schema, scenario)


def test_transfer_is_accepted_then_carried_out_by_the_worker(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    """POST /transfers answers 202; once the worker ran, the transfer and statement show it."""
    transfer_ids: list[str] = []

    async def request(client: Client) -> None:
        await open_funded(client, "carol")
        await open_funded(client, "dan", "0")
        accepted = await client.post(
            "/transfers", json={"source": "carol", "destination": "dan", "amount": "40"}
        )
        assert accepted.status_code == 202
        assert accepted.json()["status"] == "requested"
        transfer_ids.append(accepted.json()["id"])

    async def check(client: Client) -> None:
        transfer = (await client.get(f"/transfers/{transfer_ids[0]}")).json()
        assert transfer["status"] == "completed"
        lines = (await client.get("/accounts/carol/statement")).json()["lines"]
        assert [(line["description"], line["balance"]) for line in lines] == [
            ("deposit", "100.00"),
            ("transfer to dan", "60.00"),
        ]
        assert (await client.get("/accounts/dan")).json()["balance"] == "40"

    run_api(postgres_dsn, postgres_store.schema, request)
    build(postgres_store).run_until_caught_up()
    run_api(postgres_dsn, postgres_store.schema, check)


def test_bad_amounts_are_422(postgres_store: PostgresEventStore, postgres_dsn: str) -> None:
    """Amounts no rule takes answer 422 with the bank's message, never 500; nothing moves."""

    async def scenario(client: Client) -> None:
        await open_funded(client, "erin")
        await open_funded(client, "fred", "0")
        for amount, message in (
            ("NaN", "invalid amount NaN: amounts must be finite numbers"),
            ("sNaN", "invalid amount sNaN: amounts must be finite numbers"),
            ("Infinity", "invalid amount Infinity: amounts must be finite numbers"),
            ("-Infinity", "invalid amount -Infinity: amounts must be finite numbers"),
            ("1e30", "invalid amount 1E+30: amounts must be at most 1000000000"),
            ("0", "invalid amount 0: amounts must be positive"),
            ("0.001", "invalid amount 0.001: amounts have at most 2 decimal places"),
        ):
            for url, body in (
                ("/accounts/erin/deposits", {"amount": amount}),
                ("/accounts/erin/withdrawals", {"amount": amount}),
                ("/transfers", {"source": "erin", "destination": "fred", "amount": amount}),
            ):
                response = await client.post(url, json=body)
                assert (response.status_code, response.json()) == (422, {"error": message}), url
        assert (await client.get("/accounts/erin")).json()["balance"] == "100.00"

    run_api(postgres_dsn, postgres_store.schema, scenario)


def test_ids_of_the_other_aggregate_type(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    """An account's id is no transfer (404) and the reverse; an account cannot be opened
    under a transfer's id (409, saying so); nothing is written."""

    async def scenario(client: Client) -> None:
        await open_funded(client, "gina")
        await open_funded(client, "hal", "0")
        accepted = await client.post(
            "/transfers", json={"source": "gina", "destination": "hal", "amount": "1"}
        )
        transfer = accepted.json()["id"]
        not_a_transfer = await client.get("/transfers/gina")
        assert (not_a_transfer.status_code, not_a_transfer.json()) == (
            404,
            {"error": "Transfer 'gina' not found: the id is of type Account"},
        )
        not_an_account = await client.get(f"/accounts/{transfer}")
        assert not_an_account.status_code == 404
        for url, body in (
            (f"/accounts/{transfer}/deposits", {"amount": "1"}),
            ("/transfers", {"source": transfer, "destination": "hal", "amount": "1"}),
        ):
            assert (await client.post(url, json=body)).status_code == 404
        taken = await client.post(
            "/accounts", json={"id": transfer, "owner": "Eve", "currency": "EUR"}
        )
        assert (taken.status_code, taken.json()) == (
            409,
            {"error": f"cannot open account {transfer!r}: the id is taken by a Transfer"},
        )
        shown = await client.get(f"/transfers/{transfer}")
        assert (shown.status_code, shown.json()["status"]) == (200, "requested")

    run_api(postgres_dsn, postgres_store.schema, scenario)


def test_forgetting_a_customer(postgres_store: PostgresEventStore, postgres_dsn: str) -> None:
    """POST /customers/{id}/forget: the owner's name reads as forgotten in every account."""

    async def scenario(client: Client) -> None:
        for account in ("ann-1", "ann-2"):
            response = await client.post(
                "/accounts",
                json={"id": account, "owner": "Ann Ames", "currency": "EUR", "customer_id": "ann"},
            )
            assert response.status_code == 201, response.text
        await open_funded(client, "bob", "0")
        forgotten = await client.post("/customers/ann/forget", json={"reason": "by request"})
        assert forgotten.json() == {"customer_id": "ann", "forgotten": True}
        for account in ("ann-1", "ann-2"):
            assert (await client.get(f"/accounts/{account}")).json()["owner"] == FORGOTTEN_OWNER
        assert (await client.get("/accounts/bob")).json()["owner"] == "Bob"
        again = await client.post(
            "/accounts",
            json={"id": "ann-3", "owner": "Ann Ames", "currency": "EUR", "customer_id": "ann"},
        )
        assert again.status_code == 422
        assert "forgotten" in again.json()["error"]
        assert (await client.post("/customers/ann/forget")).status_code == 200  # idempotent
        bad = await client.post(f"/customers/{'x' * 201}/forget")
        assert bad.status_code == 422

    run_api(postgres_dsn, postgres_store.schema, scenario)


def test_the_factory_without_a_dsn_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """`uvicorn --factory examples.bank.http:app` with no ESFRAMEWORK_DSN: one line, no
    KeyError traceback."""
    monkeypatch.delenv("ESFRAMEWORK_DSN", raising=False)
    with pytest.raises(SystemExit, match=r"^error: set ESFRAMEWORK_DSN to a PostgreSQL DSN"):
        app()
