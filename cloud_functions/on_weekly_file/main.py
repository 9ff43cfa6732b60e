"""Cloud Function on_weekly_file: a weekly customer file in weekly/ starts a scoring run."""

import logging

import functions_framework

from cloud_functions.storage_event import handle

logging.basicConfig(level=logging.INFO)


@functions_framework.cloud_event
def on_weekly_file(event) -> None:
    handle(event, prefix="weekly/", function="on_weekly_file")
