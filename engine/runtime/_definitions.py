"""Deployments: a BPMN file becomes versions of the processes it defines."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.bpmn import ParsedFile, content_hash, validate_file
from engine.components import OPERATORS
from engine.errors import Conflict, NotFound, Problem, ValidationFailed
from engine.store import Database, DeploymentRow, InstanceRow, ProcessVersionRow


@dataclass(frozen=True)
class DeployResult:
    filename: str
    process_id: str
    version: int
    status: str  # new | new version | unchanged


@dataclass(frozen=True)
class ProcessSummary:
    process_id: str
    name: str
    latest_version: int
    versions: int
    deployed_at: str
    filename: str
    instances: int


def _latest(session: Session, process_id: str) -> ProcessVersionRow | None:
    return session.scalar(
        select(ProcessVersionRow)
        .where(ProcessVersionRow.process_id == process_id)
        .order_by(ProcessVersionRow.version.desc())
        .limit(1)
    )


def latest_version(session: Session, process_id: str) -> ProcessVersionRow:
    row = _latest(session, process_id)
    if row is None:
        known = (
            ", ".join(session.scalars(select(ProcessVersionRow.process_id).distinct())) or "none"
        )
        raise NotFound(
            f"no process {process_id!r} is deployed (deployed: {known})",
            [Problem("deploy its .bpmn file with `catflow deploy FILE`", where=process_id)],
        )
    return row


def _unchanged(session: Session, digest: str, ever: bool = False) -> list[ProcessVersionRow] | None:
    """The versions of this exact content that make deploying it again a no-op, or None.

    Normally that is when the content is already the latest version of its
    processes. With ``ever``, any earlier deployment of it counts: a file that sits
    in processes/ must not undo a newer version deployed by `catflow deploy`.
    """
    rows = list(
        session.scalars(select(ProcessVersionRow).where(ProcessVersionRow.content_hash == digest))
    )
    if not rows:
        return None
    if ever:
        newest: dict[str, ProcessVersionRow] = {}
        for r in rows:
            if r.process_id not in newest or r.version > newest[r.process_id].version:
                newest[r.process_id] = r
        return list(newest.values())
    latest = [
        r for r in rows if (lv := _latest(session, r.process_id)) is not None and lv.id == r.id
    ]
    return latest if len(latest) == len({r.process_id for r in rows}) else None


def deploy(
    db: Database,
    files: Iterable[tuple[str, bytes]],
    *,
    max_bytes: int,
    deployed_by: str = "",
    unchanged_if_ever_deployed: bool = False,
) -> list[DeployResult]:
    """Validate every file, then store them all in one transaction — or nothing at all."""
    files = list(dict.fromkeys(files))  # the same file named twice is deployed once
    parsed: list[ParsedFile] = []
    results: list[DeployResult] = []
    problems: list[Problem] = []
    with db.session() as session:
        for filename, data in files:
            same = _unchanged(session, content_hash(data), unchanged_if_ever_deployed)
            if same is not None:
                results.extend(
                    DeployResult(filename, r.process_id, r.version, "unchanged") for r in same
                )
                continue
            try:
                parsed.append(validate_file(data, filename, OPERATORS.all(), max_bytes=max_bytes))
            except ValidationFailed as exc:
                problems.extend(exc.problems)
    problems.extend(_defined_twice(results, parsed))
    if problems:
        raise ValidationFailed(
            f"deployment refused: {len(problems)} problem(s); nothing was deployed", problems
        )
    if not parsed:
        return results
    try:
        results.extend(_store(db, parsed, deployed_by))
    except IntegrityError:
        raise Conflict(
            "another deployment of the same process was stored at the same moment; "
            "deploy again (nothing of this one was stored)"
        ) from None
    return results


def _store(db: Database, parsed: list[ParsedFile], deployed_by: str) -> list[DeployResult]:
    results: list[DeployResult] = []
    with db.session() as session:
        for pf in parsed:
            deployment = DeploymentRow(
                filename=pf.filename,
                content_hash=pf.content_hash,
                xml=pf.xml,
                deployed_by=deployed_by,
            )
            session.add(deployment)
            session.flush()
            for proc in pf.processes:
                latest = _latest(session, proc.process_id)
                version = (latest.version + 1) if latest else 1
                session.add(
                    ProcessVersionRow(
                        process_id=proc.process_id,
                        version=version,
                        name=proc.name,
                        deployment_id=deployment.id,
                        content_hash=pf.content_hash,
                        spec=proc.spec,
                        limits=proc.limits or None,
                        options=proc.options or None,
                    )
                )
                results.append(
                    DeployResult(
                        pf.filename, proc.process_id, version, "new version" if latest else "new"
                    )
                )
    return results


def _defined_twice(unchanged: list[DeployResult], parsed: list[ParsedFile]) -> list[Problem]:
    """A process defined by two files of one deployment.

    Stored one after the other, each file would be the latest version in turn, and
    the next deployment of the same files would store both again, endlessly.
    """
    owner = {r.process_id: r.filename for r in unchanged}
    problems: list[Problem] = []
    for pf in parsed:
        for proc in pf.processes:
            other = owner.setdefault(proc.process_id, pf.filename)
            if other == pf.filename:
                continue
            where = f"{pf.filename}:{proc.line}" if proc.line else pf.filename
            problems.append(
                Problem(
                    f"process {proc.process_id!r} is also defined by {other}",
                    where=f"{where} process '{proc.process_id}' ({proc.name})",
                    hint="deploy one file per process: remove one of the two files or give "
                    "one process another id; every file in processes/ is deployed each time",
                    details={
                        "file": pf.filename,
                        "line": proc.line,
                        "element_id": proc.process_id,
                        "element_name": proc.name,
                        "element_type": "process",
                        "other_file": other,
                    },
                )
            )
    return problems


def deploy_paths(
    db: Database,
    paths: Iterable[Path],
    *,
    max_bytes: int,
    deployed_by: str = "",
    unchanged_if_ever_deployed: bool = False,
) -> list[DeployResult]:
    files: list[tuple[str, bytes]] = []
    problems: list[Problem] = []
    for path in paths:
        where = str(path)
        too_big = Problem(
            f"file is more than {max_bytes:,} bytes, the limit",
            where=where,
            hint="split the process, or raise CATFLOW_MAX_BPMN_BYTES",
            details={"file": where, "line": None},
        )
        try:
            size = path.stat().st_size
            if size > max_bytes:
                problems.append(
                    replace(too_big, message=f"file is {size:,} bytes; the limit is {max_bytes:,}")
                )
                continue
            # Read no more than the limit allows: a device or a pipe has no size to check.
            with path.open("rb") as stream:
                data = stream.read(max_bytes + 1)
        except OSError as exc:
            problems.append(
                Problem(
                    f"cannot be read: {exc.strerror}",
                    where=where,
                    hint="check the file's path and permissions",
                    details={"file": where, "line": None},
                )
            )
            continue
        if len(data) > max_bytes:
            problems.append(too_big)
            continue
        files.append((where, data))
    if problems:
        raise ValidationFailed("deployment refused; nothing was deployed", problems)
    return deploy(
        db,
        files,
        max_bytes=max_bytes,
        deployed_by=deployed_by,
        unchanged_if_ever_deployed=unchanged_if_ever_deployed,
    )


def list_processes(session: Session) -> list[ProcessSummary]:
    counts = dict(
        session.execute(
            select(InstanceRow.process_id, func.count()).group_by(InstanceRow.process_id)
        ).all()
    )
    out: list[ProcessSummary] = []
    ids = sorted(set(session.scalars(select(ProcessVersionRow.process_id))))
    for pid in ids:
        latest = _latest(session, pid)
        assert latest is not None
        deployment = session.get(DeploymentRow, latest.deployment_id)
        versions = session.scalar(select(func.count()).where(ProcessVersionRow.process_id == pid))
        out.append(
            ProcessSummary(
                process_id=pid,
                name=latest.name,
                latest_version=latest.version,
                versions=int(versions or 0),
                deployed_at=latest.created_at.isoformat(timespec="seconds"),
                filename=deployment.filename if deployment else "",
                instances=int(counts.get(pid, 0)),
            )
        )
    return out


def deployed_process_ids(session: Session) -> set[str]:
    return set(session.scalars(select(ProcessVersionRow.process_id).distinct()))
