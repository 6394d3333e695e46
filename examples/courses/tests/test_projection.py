"""The courses' read model sees decision and aggregate events in one global order."""

from __future__ import annotations

from typing import Any

from examples.courses import projections
from examples.courses.app import Courses


def test_the_read_model_follows_every_decision(subscription_store: Any) -> None:
    courses = Courses(subscription_store)
    courses.define("maths", title="Maths", capacity=2)
    courses.register("ann", name="Ann")
    courses.subscribe("ann", "maths")
    courses.rename("maths", title="Algebra")
    courses.change_capacity("maths", capacity=4)
    projections.build(subscription_store).run_until_caught_up()
    assert projections.overview(subscription_store) == [("maths", "Algebra", 4, 1)]
    activity = projections.activity(subscription_store)
    positions = [position for position, *_ in activity]
    assert positions == sorted(positions)
    streams = [stream for _, stream, _, _ in activity]
    assert streams[1] == "ann"  # the Student aggregate's stream, between two decisions
    assert all(s.startswith("$decision-") for s in streams[:1] + streams[2:])
    assert [tags for *_, tags in activity] == [
        "course:maths",
        "student:ann",
        "course:maths student:ann",
        "course:maths",
        "course:maths",
    ]
