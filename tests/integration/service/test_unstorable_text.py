"""Text no database can store (a NUL character, a lone surrogate) is a 422 naming the field,
on every body, before anything is written."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from service.persistence.tables import api_keys


def key_count(client) -> int:
    with client.app.extensions["flashloan"].store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(api_keys)).scalar_one()


@pytest.mark.parametrize("name", ["bank\x00app", "bank\ud800app"])
def test_a_key_name_no_database_can_store_is_refused(any_db_client, name):
    before = key_count(any_db_client)
    body = json.dumps({"role": "channel", "name": name})  # \u0000 and \ud800 escapes
    r = any_db_client.http.post("/v1/keys", data=body, headers={
        **any_db_client.headers("admin"), "Content-Type": "application/json"})
    assert r.status_code == 422, r.get_data(as_text=True)
    error = r.get_json()["error"]
    assert list(error["fields"]) == ["name"]
    assert key_count(any_db_client) == before


def test_the_field_is_named_wherever_it_nests(any_db_client, people):
    consent = any_db_client.consent(people[0])
    body = any_db_client.application(people[0], consent["consent_id"])
    body["applicant"]["name"] = "张\x00三"
    r = any_db_client.post("/v1/applications", body)
    assert r.status_code == 422
    assert list(r.get_json()["error"]["fields"]) == ["applicant.name"]
    body["applicant"]["name"] = "张三"
    r = any_db_client.http.post("/v1/applications", data=json.dumps({**body, "k\ud800": 1}),
                                headers={**any_db_client.headers("channel"),
                                         "Content-Type": "application/json"})
    assert r.status_code == 422 and list(r.get_json()["error"]["fields"]) == ["k\\ud800"]
