"""The local stack: real services on loopback, started when missing and stopped by ``remarketing down``.

Part of the core's shell: it may start adapters as processes, and nothing in the core imports it.
"""
