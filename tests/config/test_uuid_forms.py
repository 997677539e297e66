"""UUID columns in data-designer's forms: hex digits without dashes, the short form, upper
case and a prefix; each form reproducible under the seed like the canonical one."""

from __future__ import annotations

import re
import uuid

import pytest

from rowforge.api import preview
from rowforge.config.columns import UUIDSampler
from rowforge.config.dataset import DatasetConfig
from rowforge.errors import ConfigError


def values(column: UUIDSampler, rows: int = 200, seed: int = 3) -> list[str]:
    frame = preview(DatasetConfig(columns=[column], seed=seed), rows).dataset
    return list(frame[column.name])


def test_the_default_is_the_canonical_form_of_a_version_4_uuid() -> None:
    for value in values(UUIDSampler(name="id")):
        assert str(uuid.UUID(value)) == value and uuid.UUID(value).version == 4


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ({"hex": True}, r"[0-9a-f]{32}"),
        ({"short_form": True}, r"[0-9a-f]{8}"),
        ({"hex": True, "uppercase": True}, r"[0-9A-F]{32}"),
        ({"prefix": "REV-", "short_form": True, "uppercase": True}, r"REV-[0-9A-F]{8}"),
        ({"prefix": "id_"}, r"id_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-\w{12}"),
    ],
)
def test_each_form_matches_its_pattern(options: dict[str, object], pattern: str) -> None:
    drawn = values(UUIDSampler(name="id", **options))  # type: ignore[arg-type]
    assert all(re.fullmatch(pattern, value) for value in drawn), drawn[:3]
    assert len(set(drawn)) == len(drawn)


def test_a_form_is_the_same_uuid_written_differently() -> None:
    canonical = values(UUIDSampler(name="id"))
    hexed = values(UUIDSampler(name="id", hex=True, uppercase=True, prefix="X"))
    assert ["X" + uuid.UUID(c).hex.upper() for c in canonical] == hexed
    assert values(UUIDSampler(name="id", hex=True), seed=4) != values(
        UUIDSampler(name="id", hex=True), seed=3
    )


@pytest.mark.parametrize(
    ("field", "value"), [("prefix", 3), ("hex", "yes"), ("short_form", 1), ("uppercase", None)]
)
def test_wrong_types_are_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"column 'id'.*{field}"):
        UUIDSampler(name="id", **{field: value})  # type: ignore[arg-type]
