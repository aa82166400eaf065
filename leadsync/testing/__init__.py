"""Test kit for connectors: the contract suite every destination keeps, importable by yours.

A connector registered through the `leadsync.connectors` entry point proves itself the way
the built-in ones do (Singer SDK ships its standard tests the same way): write a `Harness`
that builds your connector against a real destination or a faithful fake of it, reads back
what it holds for a lead id and injects faults by name, then subclass the suite::

    from leadsync.testing import ConnectorContract

    class TestMyCrm(ConnectorContract):
        harness_class = MyCrmHarness

Needs pytest (`pip install leadsync[testing]`); leadsync itself never imports this package.
"""

import pytest

# Plain asserts in the shipped suite explain their failures like the tests of your own package.
pytest.register_assert_rewrite("leadsync.testing.connector_contract")

from leadsync.testing.connector_contract import ERROR_KIND, ConnectorContract  # noqa: E402
from leadsync.testing.harness import (  # noqa: E402
    FAULTS,
    SHORT_TIMEOUT,
    Courier,
    Harness,
    Held,
    make_lead,
    personal_data,
    scored,
)

__all__ = [
    "ERROR_KIND",
    "FAULTS",
    "SHORT_TIMEOUT",
    "ConnectorContract",
    "Courier",
    "Harness",
    "Held",
    "make_lead",
    "personal_data",
    "scored",
]
