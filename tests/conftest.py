"""Test-wide settings: no test may reach real AWS, so fake credentials and a fixed region are set first."""

from __future__ import annotations

import os

import pytest

for name, value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ[name] = value
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The end-to-end tests first, longest first, so that with two workers (`make test`) the long ones
    start at once and the many short unit tests fill the gaps, rather than one long test starting last."""
    longest_first = (
        "test_two_hundred_mixed_files",
        "test_every_real_file_settles",
        "test_a_run_takes_every_file_given",
        "test_a_file_exported_by_another_tool",
        "test_repeated_state_changes",
        "test_workers_killed_mid_batch",
        "test_every_shell_block",
    )

    def rank(item: pytest.Item) -> tuple[int, int]:
        for position, prefix in enumerate(longest_first):
            if item.name.startswith(prefix):
                return (0, position)
        return (1, 0) if item.get_closest_marker("e2e") else (2, 0)

    items.sort(key=rank)  # stable: the order within a rank stays the collection order
