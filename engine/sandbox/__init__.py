"""What a script may do, and the helpers it is given."""

from ._helpers import HELPERS, add_duration, dig, normalize_email, parse_duration, unique
from ._limits import DEFAULT_LIMITS, MIB, Limits
from ._pool import SandboxPool, pool, run_limited
from ._restricted import GIVEN_NAMES, SAFE_MODULES, ScriptError, check, evaluate, execute
from ._simple import evaluate_simple

__all__ = [
    "DEFAULT_LIMITS",
    "GIVEN_NAMES",
    "HELPERS",
    "MIB",
    "SAFE_MODULES",
    "Limits",
    "SandboxPool",
    "ScriptError",
    "add_duration",
    "check",
    "dig",
    "evaluate",
    "evaluate_simple",
    "execute",
    "normalize_email",
    "parse_duration",
    "pool",
    "run_limited",
    "unique",
]
