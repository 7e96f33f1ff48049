"""Version numbers (claimed in the ledger table, moto in-process) and the promotion rule."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from reviews_model.features import FeatureConfig
from reviews_model.versions import Version
from services.trainer.version_rules import configuration_identity, decide_promotion, superseded
from services.trainer.versions import ModelRegistry
from shared.ledger import create_ledger_table

TABLE = "ledger"


@pytest.fixture
def registry() -> Iterator[ModelRegistry]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_ledger_table(client, TABLE)
        yield ModelRegistry(client, TABLE)


def test_versions_read_and_print_as_vmajor_minor() -> None:
    assert str(Version.parse("v2.10")) == "v2.10"
    assert Version.parse("v1.10") > Version.parse("v1.9")
    with pytest.raises(ValueError, match="not a version"):
        Version.parse("1.0")


def test_retraining_bumps_the_minor_and_a_new_configuration_the_major(registry: ModelRegistry) -> None:
    default = configuration_identity("sentiment3", FeatureConfig())
    # Given trainings of the default configuration
    first = registry.claim_version(*default, claimed_by="a")
    second = registry.claim_version(*default, claimed_by="b")
    # When the label target changes, then the features
    stars = registry.claim_version(*configuration_identity("stars", FeatureConfig()), claimed_by="c")
    trigrams = registry.claim_version(*configuration_identity("stars", FeatureConfig(ngram_max=3)), claimed_by="d")
    # And the default configuration trains again
    third = registry.claim_version(*default, claimed_by="e")
    # Then
    assert [str(v) for v in (first, second, stars, trigrams, third)] == ["v1.0", "v1.1", "v2.0", "v3.0", "v1.2"]


def test_trainings_started_together_get_distinct_consecutive_versions(registry: ModelRegistry) -> None:
    identity = configuration_identity("sentiment3", FeatureConfig())
    claimed: list[Version] = []
    start = threading.Barrier(6)

    def claim(name: str) -> None:
        start.wait()
        claimed.append(registry.claim_version(*identity, claimed_by=name))

    threads = [threading.Thread(target=claim, args=(f"t{index}",)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == [Version(1, minor) for minor in range(6)]


def test_current_is_swapped_only_from_the_version_it_was_compared_with(registry: ModelRegistry) -> None:
    assert registry.current() is None
    assert registry.swap_current(None, Version(1, 0))
    assert not registry.swap_current(None, Version(1, 1))  # someone was promoted first
    assert registry.swap_current(Version(1, 0), Version(1, 1))
    assert not registry.swap_current(Version(1, 0), Version(1, 2))  # stale comparison
    assert registry.current() == Version(1, 1)


def test_promotion_needs_the_floor_and_at_least_the_current_score() -> None:
    current = Version(1, 0)
    assert decide_promotion(0.70, 0.5, None, None).promote
    assert decide_promotion(0.70, 0.5, current, 0.70).promote  # as good as current is enough
    below = decide_promotion(0.69, 0.5, current, 0.70)
    assert not below.promote
    assert below.reason is not None and "below the current model v1.0" in below.reason
    floor = decide_promotion(0.5, 0.5, None, None)
    assert not floor.promote
    assert floor.reason is not None and "floor" in floor.reason
    # A current model that cannot be scored on this split: the floor alone decides, and the note says why
    unscored = decide_promotion(0.6, 0.5, current, None, "the current model v1.0 predicts other classes")
    assert unscored.promote and unscored.reason is not None


def test_a_version_launched_before_the_current_one_is_never_promoted_over_it() -> None:
    earlier, later = Version(1, 0), Version(1, 1)
    refused = superseded(earlier, 100.0, later, 200.0)
    assert refused is not None and not refused.promote
    assert superseded(later, 200.0, earlier, 100.0) is None
    assert superseded(later, 200.0, None, None) is None
    # Across configurations the claim time decides, not the numbers: v1.5 launched after v2.0 may replace it.
    assert superseded(Version(1, 5), 300.0, Version(2, 0), 200.0) is None
