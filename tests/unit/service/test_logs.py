"""Logs: JSON lines that never carry a national ID, a mobile number or an API key."""

from __future__ import annotations

import json
import logging
import os

from service.ops.logs import JsonFormatter, scrub


def test_personal_data_and_keys_are_scrubbed():
    text = ("applicant 11010519491231002X mobile 13812348000 key "
            "fl_0123456789ab_S3cr3t-value_x Authorization: Bearer abc.def")
    clean = scrub(text)
    for secret in ("11010519491231002X", "13812348000", "S3cr3t", "abc.def"):
        assert secret not in clean


def test_records_are_one_json_object_with_extra_fields():
    record = logging.makeLogRecord({"name": "flashloan.test", "levelname": "INFO",
                                    "msg": "decided %s", "args": ("110101199005170024",),
                                    "application_id": "a_1"})
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["level"] == "info" and entry["application_id"] == "a_1"
    assert entry["pid"] == os.getpid()
    assert "110101199005170024" not in line
