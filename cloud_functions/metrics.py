"""What the storage-triggered functions did with their events (docs/observability.md).

Locally each function serves these on its own ``/metrics`` (``cloud_functions.serve``); in the cloud the same
facts are log-based metrics over the log lines ``storage_event`` writes."""

from __future__ import annotations

from prometheus_client import Counter

EVENTS = Counter("remarketing_function_events", "Storage events received", ["function"])
IGNORED = Counter(
    "remarketing_function_events_ignored", "Events not launched, by reason", ["function", "reason"]
)
LAUNCHED = Counter("remarketing_function_runs_launched", "Runs launched", ["function", "kind"])
DEDUPLICATED = Counter(
    "remarketing_function_runs_deduplicated", "Redeliveries turned into the existing run", ["function"]
)

# ``storage_event.ignored_because``'s words, as bounded label values.
REASONS = {
    "not under": "other_prefix",
    "a folder object": "folder",
    "a temporary object": "temporary",
    "not a .csv file": "not_csv",
    "a zero-byte object": "empty",
}


IGNORED_REASONS = ("malformed", *REASONS.values(), "not_launchable", "other")


def declare(function: str, kind: str) -> None:
    """Every series of ``function`` at zero, so rates and dashboards have them before the first event."""
    EVENTS.labels(function)
    DEDUPLICATED.labels(function)
    LAUNCHED.labels(function, kind)
    for reason in IGNORED_REASONS:
        IGNORED.labels(function, reason)


def reason_label(why: str) -> str:
    return next((label for words, label in REASONS.items() if why.startswith(words)), "other")
