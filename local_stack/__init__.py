"""The local stack: every service on loopback (emulator, MLflow, API, app, functions, the event bridge),
started when missing and stopped by ``remarketing down``. A composition root, like the CLI: it starts the
adapters as processes, and nothing in the core imports it.
"""
