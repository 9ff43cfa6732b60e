"""``remarketing``: the command line, a composition root that wires the core to its adapters."""
