"""Cloud Function on_input_file: a historical campaign file in input/ starts a training run."""

import logging

import functions_framework

from cloud_functions.storage_event import handle

logging.basicConfig(level=logging.INFO)


@functions_framework.cloud_event
def on_input_file(event) -> None:
    handle(event, prefix="input/", function="on_input_file")
