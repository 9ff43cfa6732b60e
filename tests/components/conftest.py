import pytest


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """A state folder with the storage emulator only: the run record and the hand-offs are real."""
    from local_stack import services

    settings = services.private_settings(tmp_path_factory.mktemp("state"))
    services.ensure_stack(settings, ("storage-emulator",))
    yield settings
    services.down(settings)
