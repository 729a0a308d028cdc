"""Process definitions, instances, leases, the scheduler of due work, and workers."""

from . import _states as states
from ._celery import run_worker
from ._definitions import (
    DeployResult,
    ProcessSummary,
    deploy,
    deploy_paths,
    deployed_process_ids,
    latest_version,
    list_processes,
)
from ._executor import Executor, LeaseLost, due_now
from ._instances import (
    InstanceFilter,
    blocking_predecessor,
    cancel,
    complete_user_task,
    create_instance,
    get_instance,
    instance_detail,
    instance_summary,
    list_instances,
    open_incidents,
    resume,
    resume_after_authorization,
    retry,
    skip,
    start_process,
    suspend,
)
from ._project import Project, event_starter, open_project
from ._runner import Runner, RunOnceReport

__all__ = [
    "DeployResult",
    "Executor",
    "InstanceFilter",
    "LeaseLost",
    "ProcessSummary",
    "Project",
    "RunOnceReport",
    "Runner",
    "blocking_predecessor",
    "cancel",
    "complete_user_task",
    "create_instance",
    "deploy",
    "deploy_paths",
    "deployed_process_ids",
    "due_now",
    "event_starter",
    "get_instance",
    "instance_detail",
    "instance_summary",
    "latest_version",
    "list_instances",
    "list_processes",
    "open_incidents",
    "open_project",
    "resume",
    "resume_after_authorization",
    "retry",
    "run_worker",
    "skip",
    "start_process",
    "states",
    "suspend",
]
