"""KFP lightweight components: typed artifacts in and out, one call into the core each."""
