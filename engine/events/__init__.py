"""Record events: trigger rules, and the dispatcher that starts instances from them."""

from ._dispatcher import DispatchReport, dispatch_pending
from ._triggers import Match, event_dict, match

__all__ = ["DispatchReport", "Match", "dispatch_pending", "event_dict", "match"]
