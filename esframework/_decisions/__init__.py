"""Decision models (dynamic consistency boundaries): state folded from tagged events, read
with one query and saved with the condition that query implies."""

from esframework._decisions._model import decision_model
from esframework._decisions._service import Decisions
from esframework._decisions._service_async import AsyncDecisions

__all__ = ["AsyncDecisions", "Decisions", "decision_model"]
