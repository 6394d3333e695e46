"""A small domain with personal data: customers whose email and name are theirs."""

from __future__ import annotations

from typing import Any, Self

from esframework import SnapshotPolicy, aggregate, applies, emit, event, new, personal, upcaster

FORGOTTEN = "(forgotten)"


@event(name="test.CustomerRegistered", version=2)
class CustomerRegistered:
    customer_id: str
    email: str = personal(subject="customer_id", forgotten=FORGOTTEN)
    name: str = personal(subject="customer_id", forgotten=FORGOTTEN)
    plan: str


@event(name="test.CustomerRegistered", version=1)
class CustomerRegisteredV1:
    customer_id: str
    email: str = personal(subject="customer_id", forgotten=FORGOTTEN)
    plan: str


# Version 1 had no name: the upcaster sees the unsealed email (or its placeholder).
@upcaster("test.CustomerRegistered", from_version=1)
def _name_from_email(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "name": data["email"].split("@")[0]}


@event(name="test.EmailChanged")
class EmailChanged:
    customer_id: str
    email: str = personal(subject="customer_id", forgotten=FORGOTTEN)


@event(name="test.Referred")
class Referred:
    """Personal data of two subjects in one event."""

    customer_id: str
    friend_id: str
    friend_email: str = personal(subject="friend_id", forgotten="")


@aggregate(stream_type="test.Customer", snapshots=SnapshotPolicy(every=2))
class Customer:
    customer_id: str = ""
    email: str = personal(subject="customer_id", forgotten=FORGOTTEN, default="")
    plan: str = ""
    friends: int = 0

    @classmethod
    def register(cls, customer_id: str, email: str, name: str = "Ada") -> Self:
        customer = new(cls, customer_id)
        emit(
            customer,
            CustomerRegistered(customer_id=customer_id, email=email, name=name, plan="basic"),
        )
        return customer

    def change_email(self, email: str) -> None:
        emit(self, EmailChanged(customer_id=self.customer_id, email=email))

    def refer(self, friend_id: str, friend_email: str) -> None:
        emit(
            self,
            Referred(customer_id=self.customer_id, friend_id=friend_id, friend_email=friend_email),
        )

    @applies(CustomerRegistered)
    def _registered(self, event: CustomerRegistered) -> None:
        self.customer_id = event.customer_id
        self.email = event.email
        self.plan = event.plan

    @applies(EmailChanged)
    def _email_changed(self, event: EmailChanged) -> None:
        self.email = event.email

    @applies(Referred)
    def _referred(self, _: Referred) -> None:
        self.friends += 1
