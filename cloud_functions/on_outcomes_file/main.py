"""Cloud Function on_outcomes_file: a campaign's outcomes file in outcomes/ starts a monitoring run."""

import logging

import functions_framework

from cloud_functions.storage_event import handle

logging.basicConfig(level=logging.INFO)


@functions_framework.cloud_event
def on_outcomes_file(event) -> None:
    handle(event, prefix="outcomes/", function="on_outcomes_file")
