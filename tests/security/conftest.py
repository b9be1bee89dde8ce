"""Fixtures the security tests share with the dashboard tests (the demo copy a page writes to, a
deployment with sign-in), taken from where they are defined."""

from tests.dashboard.test_pages import own_demo_url  # noqa: F401 - a fixture
from tests.dashboard.test_signin import signed_in_deployment  # noqa: F401 - a fixture
