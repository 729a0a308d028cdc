"""Catflow: a BPMN business-process engine for catalog records."""

__version__ = "0.1.0"
