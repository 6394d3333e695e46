"""A subscription's settings are checked when it is made, not found wrong while it runs."""

from __future__ import annotations

import math
from typing import Any

import pytest

from esframework import AsyncSubscription, Subscription
from esframework.errors import InvalidSubscriptionError


def _handler(envelope: Any, connection: Any) -> None:
    pass


@pytest.mark.parametrize("kind", [Subscription, AsyncSubscription])
@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("batch_size", 0),
        ("batch_size", -1),
        ("batch_size", 2.5),
        ("batch_size", True),
        ("max_attempts", 0),
        ("skip_checkpoint_positions", 0),
        ("retry_delay", -0.1),
        ("retry_delay", math.nan),
        ("poll_interval", 0),
        ("poll_interval", math.inf),
        ("lease_interval", 0.0),
        ("lease_interval", "1"),
        ("skip_checkpoint_interval", -1),
    ],
)
def test_a_setting_out_of_range_is_refused_naming_it(
    kind: Any, setting: str, value: object
) -> None:
    """`batch_size=0` made each page a read of 0 events: the worker took the store for
    caught up, and with a filter (`stream_types`, `event_types`) moved its checkpoint to the
    head, past every event, none delivered. The other settings made no sense either."""
    with pytest.raises(
        InvalidSubscriptionError, match=rf"subscription 'orders': {setting} must be"
    ):
        kind(name="orders", handler=_handler, **{setting: value})


def test_the_smallest_settings_are_taken() -> None:
    made = Subscription[Any](
        name="orders",
        handler=_handler,
        batch_size=1,
        max_attempts=1,
        skip_checkpoint_positions=1,
        retry_delay=0,
        skip_checkpoint_interval=0.0,
        poll_interval=0.01,
        lease_interval=0.01,
    )
    assert (made.batch_size, made.max_attempts, made.retry_delay) == (1, 1, 0)
