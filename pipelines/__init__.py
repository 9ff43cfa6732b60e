"""Pipeline definitions (compiled to KFP IR YAML), and the launcher that runs them locally or on KFP."""
