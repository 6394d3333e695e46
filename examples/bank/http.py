"""The bank's HTTP API: an asyncio application over `AsyncRepository`.

    ESFRAMEWORK_DSN=postgresql://... uvicorn --factory examples.bank.http:app

Commands answer at once; transfers are accepted (202) and carried out by the bank's worker
(`esframework run examples.bank.worker:runner`), like the statements they show up in.
Errors: 400 for malformed requests, 404 for unknown accounts and transfers (an account's id
asked for as a transfer's, or the reverse, is unknown too), 409 when the account changed since
the version the client sent (or concurrently) or a new account's id is already taken, 422 when
a rule refuses (an amount that is not finite, not positive, finer than a cent or above
`MAX_AMOUNT` included). Every error is a JSON object with an "error" message.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from esframework import (
    AggregateNotFoundError,
    AsyncRepository,
    ConcurrencyError,
    aggregate_id,
    aggregate_version,
    execute_sql_async,
)
from esframework.errors import StreamTypeMismatchError, SubjectForgottenError
from esframework.postgres import AsyncPostgresEventStore
from examples.bank.domain import (
    Account,
    AccountExistsError,
    AccountIdTakenError,
    BankError,
    Transfer,
)
from examples.bank.projections import ACCOUNTS, accounts_tables

Handler = Callable[[Request], Awaitable[Response]]


class BadRequestError(Exception):
    """The request is malformed: the client must change it."""


def json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def account_view(account: Account) -> dict[str, Any]:
    return {
        "id": aggregate_id(account),
        "owner": account.owner,
        "customer_id": account.customer_id,
        "currency": account.currency,
        "balance": str(account.balance),
        "status": account.status,
        "version": aggregate_version(account),
    }


def transfer_view(transfer: Transfer) -> dict[str, Any]:
    return {
        "id": aggregate_id(transfer),
        "source": transfer.source,
        "destination": transfer.destination,
        "amount": str(transfer.amount),
        "currency": transfer.currency,
        "status": transfer.status,
        "reason": transfer.reason,
    }


async def fields(request: Request, *names: str) -> list[Any]:
    """The named fields of the JSON body; 400 if the body or a field is missing."""
    body = await _body(request)
    missing = [name for name in names if name not in body]
    if missing:
        message = f"missing field(s): {', '.join(missing)}"
        raise BadRequestError(message)
    return [body[name] for name in names]


async def optional_fields(request: Request, *names: str) -> list[Any]:
    """The named fields of the JSON body, None where missing; an empty body has none."""
    body = await _body(request) if await request.body() else {}
    return [body.get(name) for name in names]


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as error:
        message = f"the body is not JSON: {error}"
        raise BadRequestError(message) from error
    if not isinstance(body, dict):
        message = "the body must be a JSON object"
        raise BadRequestError(message)
    return body


def amount_of(value: object) -> Decimal:
    """Amounts travel as strings ("12.50"), so no binary float ever rounds them."""
    if not isinstance(value, str):
        message = 'amounts are strings, like "12.50"'
        raise BadRequestError(message)
    try:
        return Decimal(value)
    except InvalidOperation as error:
        message = f"not an amount: {value!r}"
        raise BadRequestError(message) from error


def expected_version(request: Request) -> int | None:
    """The account version the client last saw, from an `If-Match` header."""
    header = request.headers.get("if-match")
    if header is None:
        return None
    try:
        return int(header.strip('"'))
    except ValueError as error:
        message = "If-Match must be the account's version"
        raise BadRequestError(message) from error


# Each error the API answers, with its status; the first class that matches wins.
STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (BadRequestError, 400),
    (AggregateNotFoundError, 404),
    # Only loads get here (opening an account answers its own clash, in `open_new`): to the
    # client, an id of another kind of aggregate is one that does not exist.
    (StreamTypeMismatchError, 404),
    (ConcurrencyError, 409),
    (AccountIdTakenError, 409),
    (AccountExistsError, 409),
    (SubjectForgottenError, 422),  # a forgotten customer's name cannot be stored again
    (BankError, 422),
    (ValueError, 422),
)


def error_body(error: Exception) -> dict[str, Any]:
    if isinstance(error, StreamTypeMismatchError):
        found = f"the id is of type {error.actual}"
        return {"error": f"{error.expected} {error.stream_id!r} not found: {found}"}
    if isinstance(error, ConcurrencyError):
        return {"error": str(error), "actual_version": error.actual}
    return {"error": str(error)}


def errors(handler: Handler) -> Handler:
    """Answer the framework's and the bank's errors with the fitting status."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except tuple(kind for kind, _ in STATUSES) as error:
            status = next(code for kind, code in STATUSES if isinstance(error, kind))
            return json(error_body(error), status)

    return guarded


async def open_new(accounts: AsyncRepository[Account], account: Account) -> None:
    """Save a just-opened account; an id another kind of aggregate has is taken."""
    try:
        await accounts.save(account)
    except ConcurrencyError as error:  # a new account expects no stream at all
        raise AccountExistsError(aggregate_id(account)) from error
    except StreamTypeMismatchError as error:  # the id is a transfer's: not a race, a clash
        raise AccountIdTakenError(aggregate_id(account), error.actual) from error


async def forget_customer(store: AsyncPostgresEventStore, request: Request) -> Response:
    """Forget a customer: their name reads as forgotten in every account from now on."""
    (reason,) = await optional_fields(request, "reason")
    customer = request.path_params["customer"]
    metadata = orjson.dumps({"reason": str(reason)} if reason else {}).decode()
    await store.forget_personal_data(customer, metadata=metadata)
    return json({"customer_id": customer, "forgotten": True})


def create_app(store: AsyncPostgresEventStore) -> Starlette:
    """The bank's API over `store`; statements come from the worker's read model."""
    accounts = AsyncRepository(Account, store=store)
    transfers = AsyncRepository(Transfer, store=store)

    async def change(request: Request, command: Callable[[Account], None]) -> Response:
        account = await accounts.load(request.path_params["account"])
        expected = expected_version(request)
        if expected is not None and expected != aggregate_version(account):
            raise ConcurrencyError(aggregate_id(account), expected, aggregate_version(account))
        command(account)
        await accounts.save(account)
        return json(account_view(account))

    async def open_account(request: Request) -> Response:
        account_id, owner, currency = await fields(request, "id", "owner", "currency")
        customer = (await optional_fields(request, "customer_id"))[0]
        account = Account.open(
            str(account_id),
            owner=str(owner),
            currency=str(currency),
            customer_id=None if customer is None else str(customer),
        )
        await open_new(accounts, account)
        return json(account_view(account), 201)

    async def show_account(request: Request) -> Response:
        return json(account_view(await accounts.load(request.path_params["account"])))

    async def deposit(request: Request) -> Response:
        (amount,) = await fields(request, "amount")
        return await change(request, lambda a: a.deposit(amount_of(amount)))

    async def withdraw(request: Request) -> Response:
        (amount,) = await fields(request, "amount")
        return await change(request, lambda a: a.withdraw(amount_of(amount)))

    async def request_transfer(request: Request) -> Response:
        source, destination, amount = await fields(request, "source", "destination", "amount")
        currency = (await accounts.load(str(source))).currency
        transfer = Transfer.request(
            f"transfer-{uuid.uuid4()}",
            source=str(source),
            destination=str(destination),
            amount=amount_of(amount),
            currency=currency,
        )
        await transfers.save(transfer)
        return json(transfer_view(transfer), 202)

    async def show_transfer(request: Request) -> Response:
        return json(transfer_view(await transfers.load(request.path_params["transfer"])))

    async def statement(request: Request) -> Response:
        account = await accounts.load(request.path_params["account"])  # 404 if unknown
        async with store.transaction() as connection:  # its tables are the store's schema's
            # The version serving readers, and its table, in one transaction (blue/green).
            _, table = accounts_tables(await ACCOUNTS.active_async(connection))
            rows = await execute_sql_async(
                connection,
                "SELECT version, recorded_at, description, amount, balance "
                f"FROM {table} WHERE account = %s ORDER BY version",
                (aggregate_id(account),),
            )
        lines = [
            {"version": v, "at": t, "description": d, "amount": a, "balance": b}
            for v, t, d, a, b in rows
        ]
        return json({"account": aggregate_id(account), "lines": lines})

    routes = [
        Route("/accounts", errors(open_account), methods=["POST"]),
        Route("/accounts/{account}", errors(show_account), methods=["GET"]),
        Route("/accounts/{account}/deposits", errors(deposit), methods=["POST"]),
        Route("/accounts/{account}/withdrawals", errors(withdraw), methods=["POST"]),
        Route("/accounts/{account}/statement", errors(statement), methods=["GET"]),
        Route(
            "/customers/{customer}/forget",
            errors(lambda request: forget_customer(store, request)),
            methods=["POST"],
        ),
        Route("/transfers", errors(request_transfer), methods=["POST"]),
        Route("/transfers/{transfer}", errors(show_transfer), methods=["GET"]),
    ]
    return Starlette(routes=routes)


def app() -> Starlette:
    """For `uvicorn --factory`: the bank on the PostgreSQL server named by ESFRAMEWORK_DSN."""
    dsn = os.environ.get("ESFRAMEWORK_DSN")
    if not dsn:  # uvicorn prints the message alone, and exits 1
        msg = "error: set ESFRAMEWORK_DSN to a PostgreSQL DSN: the bank's HTTP API runs on it"
        raise SystemExit(msg)
    store = AsyncPostgresEventStore(dsn)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with store:
            await store.migrate()
            yield

    application = create_app(store)
    application.router.lifespan_context = lifespan
    return application
