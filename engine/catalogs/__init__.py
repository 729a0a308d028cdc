"""Catalogs (typed tables from YAML), record validation, and the record service."""

from ._fields import FIELD_TYPES, FieldDef, FieldError, normalise
from ._records import Cause, Page, PlannedUpdate, Record, RecordMoved, RecordService
from ._registry import (
    SyncReport,
    catalog_from_dict,
    load_catalog_files,
    stored_catalogs,
    sync_catalogs,
)
from ._schema import EVENT_KINDS, CatalogDef, TriggerDef, parse_catalog_text

__all__ = [
    "EVENT_KINDS",
    "FIELD_TYPES",
    "CatalogDef",
    "Cause",
    "FieldDef",
    "FieldError",
    "Page",
    "PlannedUpdate",
    "Record",
    "RecordMoved",
    "RecordService",
    "SyncReport",
    "TriggerDef",
    "catalog_from_dict",
    "load_catalog_files",
    "normalise",
    "parse_catalog_text",
    "stored_catalogs",
    "sync_catalogs",
]
