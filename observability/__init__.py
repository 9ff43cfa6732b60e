"""Observability adapters: the local Prometheus stack's configuration, pipeline runs' pushes, the alert rules
and the dashboards (docs/observability.md)."""
