"""(De)serialising specs and workflow state; the spec is kept apart from the state.

A process version's spec is stored once (in process_versions); an instance stores
only its task tree and data. Deserialised specs are cached per version.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG


class _StateOnlyConverter(BpmnWorkflowConverter):  # type: ignore[misc]
    """Leaves the spec out of an instance's state and takes it from the cache on load."""

    def to_dict(self, workflow: Any) -> dict[str, Any]:
        dct: dict[str, Any] = super(BpmnWorkflowConverter, self).to_dict(workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any], spec: Any = None, subprocess_specs: Any = None) -> Any:
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


_config = dict(SPIFF_CONFIG)
_config[BpmnWorkflow] = _StateOnlyConverter
_registry = BpmnWorkflowSerializer.configure(_config)
SERIALIZER = BpmnWorkflowSerializer(_registry)
registry = _registry  # for SpiffWorkflow's spec diffing


def _encode(obj: Any) -> str:
    # registry.convert has already turned UUIDs, datetimes etc. into tagged dicts.
    return json.dumps(obj, separators=(",", ":"))


def dump_spec(spec: Any, subprocess_specs: dict[str, Any]) -> str:
    return _encode(
        {
            "spec": _registry.convert(spec),
            "subprocess_specs": {k: _registry.convert(v) for k, v in subprocess_specs.items()},
        }
    )


class SpecCache:
    """Deserialised specs by their serialised text; specs are shared, never mutated.

    Keyed by content, not by a version id: ids repeat across databases.
    """

    def __init__(self, size: int = 256) -> None:
        self._items: OrderedDict[str, tuple[Any, dict[str, Any]]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, spec_json: str) -> tuple[Any, dict[str, Any]]:
        key = spec_json
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        data = json.loads(spec_json)
        spec = _registry.restore(data["spec"])
        subs = {k: _registry.restore(v) for k, v in data["subprocess_specs"].items()}
        with self._lock:
            self._items[key] = (spec, subs)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return spec, subs


SPECS = SpecCache()


def dump_state(workflow: Any) -> str:
    dct = _registry.convert(workflow)
    dct[SERIALIZER.VERSION_KEY] = SERIALIZER.VERSION
    return _encode(dct)


def load_state(state_json: str, spec: Any, subprocess_specs: dict[str, Any]) -> Any:
    dct = json.loads(state_json)
    SERIALIZER.migrate(dct)
    return _registry.restore(dct, spec=spec, subprocess_specs=subprocess_specs)
