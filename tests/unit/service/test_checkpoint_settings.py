"""The schedule of the checkpoints the service takes by itself, read from FLASHLOAN_*."""

from __future__ import annotations

import pytest

from service.ops.settings import Settings, SettingsError


def test_checkpoints_are_taken_every_thousand_records_or_five_minutes_by_default():
    s = Settings.from_env({})
    assert (s.checkpoint_every_records, s.checkpoint_every_s) == (1000, 300.0)
    s = Settings.from_env({"FLASHLOAN_CHECKPOINT_EVERY_RECORDS": "50",
                           "FLASHLOAN_CHECKPOINT_EVERY_S": "60"})
    assert (s.checkpoint_every_records, s.checkpoint_every_s) == (50, 60.0)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("FLASHLOAN_CHECKPOINT_EVERY_RECORDS", "0", "CHECKPOINT_EVERY_RECORDS must be"),
    ("FLASHLOAN_CHECKPOINT_EVERY_RECORDS", "often", "must be a number"),
    ("FLASHLOAN_CHECKPOINT_EVERY_S", "0.5", "CHECKPOINT_EVERY_S must be in"),
    ("FLASHLOAN_CHECKPOINT_EVERY_S", "nan", "CHECKPOINT_EVERY_S must be in"),
])
def test_a_schedule_that_cannot_work_is_refused(name, value, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({name: value})
