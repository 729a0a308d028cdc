"""What a script may do, and the helpers it is given."""

from ._helpers import HELPERS, add_duration, dig, normalize_email, parse_duration, unique
from ._restricted import GIVEN_NAMES, SAFE_MODULES, ScriptError, check, evaluate, execute

__all__ = [
    "GIVEN_NAMES",
    "HELPERS",
    "SAFE_MODULES",
    "ScriptError",
    "add_duration",
    "check",
    "dig",
    "evaluate",
    "execute",
    "normalize_email",
    "parse_duration",
    "unique",
]
