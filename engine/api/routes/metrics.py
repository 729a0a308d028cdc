"""/metrics: Prometheus metrics (viewer role; the series are described in ``engine.metrics``)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import metrics
from engine.api._deps import Db, Viewer
from engine.api.schemas import AUTH_ERRORS
from engine.runtime import due_now
from engine.runtime import states as S
from engine.store import InstanceRow

router = APIRouter(tags=["metrics"], responses=AUTH_ERRORS)


@router.get(
    "/metrics",
    summary="Prometheus metrics (a viewer token: `authorization: {credentials: ...}`)",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text format, or OpenMetrics when asked for",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
def get_metrics(request: Request, session: Db, _who: Viewer) -> Response:
    body, content_type = metrics.render(
        instances_by_state(session), queue_depth(session), request.headers.get("accept", "")
    )
    return Response(content=body, media_type=content_type)


def instances_by_state(session: Session) -> dict[str, int]:
    """Every state with its count of instances (0 for a state none is in)."""
    counts = dict.fromkeys(S.ALL_STATES, 0)
    rows = session.execute(
        select(InstanceRow.state, func.count()).group_by(InstanceRow.state)
    ).all()
    for state, count in rows:
        counts[state] = int(count)
    return counts


def queue_depth(session: Session) -> int:
    """Instances a worker would take now (the rule workers pick work by)."""
    return int(session.scalar(select(func.count()).where(due_now())) or 0)
