import pytest


@pytest.fixture
def writer(token_client):
    """A client whose token may write accounts, contacts, subscriptions and surveys."""
    return token_client("accounts:write")
