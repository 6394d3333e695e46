"""`assert_snapshot_matches_replay` on an aggregate whose state holds personal data."""

from __future__ import annotations

from esframework import AsyncRepository, Repository
from esframework.testing import (
    assert_snapshot_matches_replay,
    assert_snapshot_matches_replay_async,
)
from tests.conftest import Backend
from tests.personal.domain import FORGOTTEN, Customer

EMAIL = "ada.lovelace@example.com"


def _check(backend: Backend) -> Customer:
    if backend.loop is None:
        return assert_snapshot_matches_replay(Repository(Customer, store=backend.raw), "c-1")
    repository = AsyncRepository(Customer, store=backend.raw)
    return backend.loop.run(assert_snapshot_matches_replay_async(repository, "c-1"))


def test_the_snapshot_is_unsealed_before_it_is_compared(backend: Backend) -> None:
    backend.repository(Customer).save(Customer.register("c-1", EMAIL))
    assert _check(backend).email == EMAIL  # the sealed snapshot read back equal
    assert EMAIL not in backend.store.load_snapshot("c-1").data  # type: ignore[union-attr]


def test_a_forgotten_subject_checks_as_its_placeholder(backend: Backend) -> None:
    backend.repository(Customer).save(Customer.register("c-1", EMAIL))
    backend.store.forget_personal_data("c-1")
    assert _check(backend).email == FORGOTTEN
