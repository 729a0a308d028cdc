"""What the API's routers share: request and response models, parameter types, input checks.

Every input is bounded here before it reaches a service: ids fit the database's
integers, pages are at most 500 long, text carries no NUL character (PostgreSQL
refuses it) and JSON values are finite and not absurdly deep. A refusal is a 4xx
in the usual error shape, never a database error turned into a 500.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, SecretStr

from engine.api._deps import Db
from engine.api.tokens import ROLES
from engine.errors import Problem, ValidationFailed
from engine.runtime import states

ID_MAX = 2**63 - 1  # ids are BIGINT on PostgreSQL
INT_MAX = 2**31 - 1  # versions are INTEGER
OFFSET_MAX = 1_000_000_000
MAX_JSON_DEPTH = 64
NUL = "\x00"

# -- the transaction of a request ------------------------------------------------------


Tx = Db  # the request's transaction, committed before the response is sent

# -- input checks ----------------------------------------------------------------------


def refuse_nul(request: Request) -> None:
    """A router dependency: no NUL character in the path or the query (PostgreSQL refuses it)."""
    parts = [*request.path_params.values(), *request.query_params.keys()]
    parts += request.query_params.values()
    if any(NUL in str(part) for part in parts):
        raise ValidationFailed(
            "the request was refused",
            [Problem("contains a NUL character (\\x00)", "path or query", "remove it")],
        )


def no_nul(value: str) -> str:
    if NUL in value:
        raise ValueError("contains a NUL character (\\x00); remove it")
    return value


Text = Annotated[str, AfterValidator(no_nul)]


def check_json(value: Any, where: str) -> None:
    """Refuse what JSON columns cannot store: NUL, NaN or infinity, huge ints, deep nesting."""
    problems: list[Problem] = []
    pending: list[tuple[Any, str, int]] = [(value, where, 0)]
    while pending and len(problems) < 20:
        item, at, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            problems.append(Problem(f"is nested more than {MAX_JSON_DEPTH} levels deep", at))
        elif isinstance(item, str):
            if NUL in item:
                problems.append(Problem("contains a NUL character (\\x00)", at, "remove it"))
        elif isinstance(item, bool) or item is None:
            pass
        elif isinstance(item, int):
            if abs(item) > ID_MAX:
                problems.append(Problem(f"{item} does not fit in 64 bits", at))
        elif isinstance(item, float):
            if not math.isfinite(item):
                problems.append(Problem(f"{item} is not a finite number", at))
        elif isinstance(item, dict):
            for key, sub in item.items():
                if NUL in str(key):
                    problems.append(Problem("a key contains a NUL character (\\x00)", at))
                pending.append((sub, f"{at}.{key}", depth + 1))
        elif isinstance(item, list):
            pending.extend((sub, f"{at}[{i}]", depth + 1) for i, sub in enumerate(item))
    if problems:
        raise ValidationFailed("the request was refused", problems)


def checked_object(value: dict[str, Any], where: str) -> dict[str, Any]:
    check_json(value, where)
    return value


# -- parameters ------------------------------------------------------------------------

Limit = Annotated[int, Query(ge=1, le=500, description="At most this many items (1-500).")]
Offset = Annotated[
    int, Query(ge=0, le=OFFSET_MAX, description="Skip this many items first (paging).")
]
InstanceId = Annotated[int, Path(ge=1, le=ID_MAX, description="The instance's id.")]
ProcessIdPath = Annotated[
    str, Path(min_length=1, max_length=200, description="The process id (BPMN process id).")
]
State = Literal["queued", "running", "waiting", "completed", "incident", "suspended", "cancelled"]
assert set(State.__args__) == set(states.ALL_STATES)  # type: ignore[attr-defined]

# -- errors ----------------------------------------------------------------------------


class ProblemOut(BaseModel):
    """One thing wrong with the request; deployments add file, line and element."""

    model_config = ConfigDict(extra="allow")

    where: str = Field(description="Where: a field, a parameter, or file:line element")
    message: str
    hint: str = Field("", description="What to do about it")
    file: str | None = None
    line: int | None = None
    element_id: str | None = None
    element_name: str | None = None
    element_type: str | None = None


class ErrorDetail(BaseModel):
    message: str = Field(description="What happened and what to do")
    problems: list[ProblemOut] | None = None


class ErrorOut(BaseModel):
    error: ErrorDetail


def error_response(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


REQUEST_ERRORS: Responses = {
    400: error_response("The request could not be read (e.g. a body that is not UTF-8)"),
    422: error_response("The request was refused: the problems say why"),
}
TOKEN_ERRORS: Responses = {
    401: error_response("No valid API token: send `Authorization: Bearer <token>`"),
    403: error_response("The token's role is not enough for this"),
}
AUTH_ERRORS: Responses = {**REQUEST_ERRORS, **TOKEN_ERRORS}
Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: error_response("The thing named does not exist")}
CONFLICT: Responses = {409: error_response("Not possible in the current state")}

# -- records ---------------------------------------------------------------------------


class RecordOut(BaseModel):
    id: int
    catalog: str
    version: int = Field(description="1 when created; each change adds one")
    created_at: datetime
    updated_at: datetime
    data: dict[str, Any] = Field(description="The field values, in the catalog's order")


class RecordPage(BaseModel):
    items: list[RecordOut]
    total: int = Field(description="How many records match the filters")
    limit: int
    offset: int


RecordBody = dict[str, JsonValue]

# -- processes and deployments ---------------------------------------------------------


class DeployResultOut(BaseModel):
    filename: str
    process_id: str
    version: int
    status: Literal["new", "new version", "unchanged"]


class DeployedProcess(BaseModel):
    process_id: str
    version: int


class DeploymentOut(BaseModel):
    id: int
    filename: str
    content_hash: str
    deployed_by: str
    deployed_at: datetime
    processes: list[DeployedProcess]


class DeploymentDetail(DeploymentOut):
    xml: str = Field(description="The BPMN file as deployed")


class DeploymentPage(BaseModel):
    items: list[DeploymentOut]
    total: int
    limit: int
    offset: int


class ProcessOut(BaseModel):
    process_id: str
    name: str
    latest_version: int
    versions: int
    deployed_at: str
    filename: str
    instances: int = Field(description="Instances of every version")


class ProcessVersionOut(BaseModel):
    process_id: str
    version: int
    name: str
    deployment_id: int
    filename: str
    content_hash: str
    created_at: datetime
    limits: dict[str, float] | None = Field(description="Script limits the process asks for")
    options: dict[str, Any] | None = Field(
        description="Process properties, e.g. record_on_incident"
    )
    instances: int = Field(description="Instances on this version")


class ProcessVersionDetail(ProcessVersionOut):
    xml: str = Field(description="The BPMN file this version was deployed from")


class ProcessDetail(ProcessOut):
    version_list: list[ProcessVersionOut] = Field(description="Every version, newest first")


# -- instances -------------------------------------------------------------------------


class InstanceOut(BaseModel):
    id: int
    process_id: str
    state: State
    record: str | None = Field(description="CATALOG:ID of the record that started it")
    serial_key: str | None
    event_id: int | None
    rule: str | None
    waiting_for: str | None
    due_at: str | None
    error: dict[str, Any] | None = Field(description="Why it is in an incident")
    created_at: str | None
    started_at: str | None
    ended_at: str | None


class InstancePage(BaseModel):
    items: list[InstanceOut]
    counts: dict[str, int] = Field(
        description="Matching instances by state (every state; the state filter aside)"
    )
    total: int = Field(description="How many instances match every filter")
    limit: int
    offset: int


class StepOut(BaseModel):
    id: int
    element_id: str
    name: str
    type: str
    outcome: str
    started_at: str | None
    duration_ms: float
    changed: Any = Field(description="Variables the step set")
    message: str | None
    worker: str | None
    exchanges: list[dict[str, Any]] = Field(description="Outbound calls, secrets redacted")


class InstanceIncidentOut(BaseModel):
    id: int
    element_id: str | None
    name: str | None
    line: int | None
    kind: str
    message: str
    details: dict[str, Any] | None
    created_at: str | None
    resolved_at: str | None
    resolution: str | None


class InstanceDetail(InstanceOut):
    version: int | None
    variables: dict[str, Any]
    user_tasks: list[str] = Field(description="Element ids of user tasks waiting for data")
    elements: dict[str, str] = Field(description="The state of each element, by element id")
    cause: dict[str, Any] | None
    lease_owner: str | None
    lease_expires_at: str | None
    steps: list[StepOut]
    incidents: list[InstanceIncidentOut]


class StartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    process_id: Text = Field(min_length=1, max_length=200)
    variables: dict[str, JsonValue] = Field(default_factory=dict)


class RetryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upgrade: bool = Field(
        False, description="First move the instance to its process's latest version"
    )


class DataIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: dict[str, JsonValue] = Field(
        default_factory=dict, description="Variables to set, as a JSON object"
    )


# -- incidents -------------------------------------------------------------------------


class IncidentOut(BaseModel):
    id: int
    instance_id: int
    process_id: str | None
    record: str | None
    element_id: str | None
    element_name: str | None
    line: int | None
    kind: str
    message: str
    details: dict[str, Any] | None
    created_at: datetime
    resolved_at: datetime | None
    resolution: str | None


class IncidentPage(BaseModel):
    items: list[IncidentOut]
    total: int
    limit: int
    offset: int


# -- connections -----------------------------------------------------------------------


class ConnectionOut(BaseModel):
    """A connection: never its client secret, never a token."""

    name: str
    provider: str
    client_id: str
    scopes: list[str]
    auth_url: str
    token_url: str
    api_url: str
    status: str = Field(description="new, authorized or broken")
    status_message: str | None
    expires_at: str | None
    authorized: bool


Url = Annotated[Text, Field(max_length=1000)]


class ConnectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(
        min_length=1,
        max_length=100,
        description="Lower-case letters, digits, '-' and '_', starting with a letter",
    )
    provider: Literal["google"] = "google"
    client_id: Text = Field(min_length=1, max_length=500)
    client_secret: SecretStr = Field(min_length=1, max_length=4096)
    scopes: list[Annotated[Text, Field(min_length=1, max_length=500)]] | None = Field(
        None, max_length=50, description="Default: the provider's"
    )
    auth_url: Url | None = Field(None, description="Default: the provider's")
    token_url: Url | None = Field(None, description="Default: the provider's")
    api_url: Url | None = Field(None, description="Default: the provider's")


# -- tokens ----------------------------------------------------------------------------


class TokenOut(BaseModel):
    """An API token as people see it: its prefix, never the token."""

    name: str
    role: str
    prefix: str = Field(description="The token's first characters, to tell tokens apart")
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself: shown this once, keep it secret")


Role = Literal["viewer", "editor", "designer", "operator", "admin"]
assert Role.__args__ == ROLES  # type: ignore[attr-defined]


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")] | None = Field(
        None, description="Default: ROLE-N"
    )
