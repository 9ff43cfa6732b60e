"""KServe custom predictor for Remarketing model bundles (predict + explain), its image, the
InferenceService built with the KServe SDK, and the ``Deployer`` that puts a model version behind an
endpoint: a local ``ModelServer`` process, or an ``InferenceService`` on KServe.

Nothing heavy is imported here: ``serving.deployer`` is imported by the scoring pipeline, and the KServe
model server only by ``python -m serving``.
"""
