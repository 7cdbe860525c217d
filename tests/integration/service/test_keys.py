"""API keys: created, listed and revoked by an admin (API) or an operator (command line); every
change audited; a revoked key refused by every worker within the key cache's lifetime."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from audit import AuditQuery
from service.cli.main import main


def records(client, kind: str):
    store = client.app.extensions["flashloan"].store
    return list(store.iter_records(AuditQuery(kinds=(kind,))))


def key_id_of(key: str) -> str:
    return key.split("_")[1]


def test_an_admin_creates_lists_and_revokes_a_key(client):
    made = client.post("/v1/keys", {"role": "risk_officer", "name": "Wang Fang"}, who="admin")
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    secret = body["key"]
    assert secret.startswith(f"fl_{body['key_id']}_")
    assert (body["role"], body["name"], body["status"], body["revoked_at"]) == (
        "risk_officer", "Wang Fang", "active", None)
    assert client.http.get("/v1/models", headers={"Authorization": f"Bearer {secret}"}
                           ).status_code == 200

    listing = client.get("/v1/keys", who="admin")
    assert listing.status_code == 200
    items = listing.get_json()["items"]
    listed = next(item for item in items if item["key_id"] == body["key_id"])
    assert set(listed) == {"key_id", "name", "role", "status", "created_at", "revoked_at"}
    # The secret is what follows "fl_<key id>_" (split as the service does): it may itself
    # hold underscores.
    assert secret.split("_", 2)[2] not in listing.get_data(as_text=True)
    assert {key_id_of(key) for key in client.keys.values()} <= {i["key_id"] for i in items}

    revoked = client.delete(f"/v1/keys/{body['key_id']}", who="admin")
    assert revoked.status_code == 200, revoked.get_json()
    assert revoked.get_json()["status"] == "revoked" and revoked.get_json()["revoked_at"]
    assert "key" not in revoked.get_json()
    # The worker that revoked it forgets it at once.
    refused = client.http.get("/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 401
    # Revoking again changes nothing and records nothing.
    again = client.delete(f"/v1/keys/{body['key_id']}", who="admin")
    assert again.status_code == 200
    assert again.get_json()["revoked_at"] == revoked.get_json()["revoked_at"]
    assert len(records(client, "key.revoked")) == 1


def test_key_changes_are_audited_with_who_made_them_never_the_secret(client):
    admin = f"admin:{key_id_of(client.keys['admin'])}"
    made = client.post("/v1/keys", {"role": "channel", "name": "bank-c"}, who="admin").get_json()
    client.delete(f"/v1/keys/{made['key_id']}", who="admin")
    created = [r for r in records(client, "key.created") if r.payload["key_id"] == made["key_id"]]
    (revoked,) = records(client, "key.revoked")
    assert created[0].actor == admin and revoked.actor == admin
    assert created[0].payload == {"key_id": made["key_id"], "name": "bank-c", "role": "channel"}
    assert revoked.payload["key_id"] == made["key_id"] and revoked.payload["revoked_at"]
    secret = made["key"].split("_", 2)[2]
    for record in (created[0], revoked):
        assert secret not in json.dumps(record.payload)


def test_keys_made_outside_the_api_are_audited_too(client):
    # The fixture's keys were made as the command line makes them.
    created = records(client, "key.created")
    assert {r.payload["key_id"] for r in created} >= {key_id_of(k) for k in client.keys.values()}
    assert {r.actor for r in created} == {"system:cli"}


def test_only_an_admin_manages_keys(client):
    for who in ("channel", "risk_officer", "auditor"):
        assert client.get("/v1/keys", who=who).status_code == 403
        assert client.post("/v1/keys", {"role": "admin", "name": "x"}, who=who
                           ).status_code == 403
        assert client.delete(f"/v1/keys/{key_id_of(client.keys['admin'])}", who=who
                             ).status_code == 403
    assert client.get("/v1/keys", who=None).status_code == 401


def test_revoking_an_unknown_key_is_a_404(client):
    response = client.delete("/v1/keys/0123456789ab", who="admin")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(("body", "field"), [
    ({"role": "root", "name": "x"}, "role"),
    ({"role": "auditor", "name": ""}, "name"),
    ({"role": "auditor", "name": " " * 3}, "name"),
    ({"role": "auditor", "name": "x" * 101}, "name"),
    ({"role": "auditor"}, "name"),
    ({"role": "auditor", "name": "x", "secret": "mine"}, "secret"),
])
def test_a_key_request_is_validated(client, body, field):
    response = client.post("/v1/keys", body, who="admin")
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]


def test_a_revoked_key_is_refused_by_every_worker_within_the_cache_lifetime(make_client):
    lifetime_s = 0.5
    first = make_client(key_cache_s=lifetime_s)
    # Another worker on the same database, which has just verified the key.
    second = make_client(key_cache_s=lifetime_s)
    target = first.keys["auditor"]
    sent = {"Authorization": f"Bearer {target}"}
    assert second.http.get("/v1/models", headers=sent).status_code == 200
    assert first.delete(f"/v1/keys/{key_id_of(target)}", who="admin").status_code == 200
    revoked_at = time.monotonic()
    time.sleep(max(0.0, revoked_at + lifetime_s - time.monotonic()))
    assert second.http.get("/v1/models", headers=sent).status_code == 401
    assert first.http.get("/v1/models", headers=sent).status_code == 401


def test_the_api_document_states_the_key_cache_lifetime(make_client):
    spec = make_client(key_cache_s=12).get("/openapi.json", who=None).get_json()
    assert "within 12 s" in spec["info"]["description"]
    revoke = spec["paths"]["/v1/keys/{key_id}"]["delete"]
    assert "FLASHLOAN_KEY_CACHE_S" in revoke["description"]
    assert revoke["x-roles"] == ["admin"]
    assert {"401", "403", "404", "429"} <= set(revoke["responses"])
    assert {"401", "403", "422", "429"} <= set(spec["paths"]["/v1/keys"]["post"]["responses"])


def _runner(url: str, tmp_path) -> CliRunner:
    return CliRunner(env={"FLASHLOAN_DATABASE_URL": url, "FLASHLOAN_ENV": "test",
                          "FLASHLOAN_VAR_DIR": str(tmp_path)})


def test_keys_are_listed_and_revoked_on_the_command_line(sqlite_url, tmp_path):
    from audit import AuditStore

    runner = _runner(sqlite_url, tmp_path)
    assert runner.invoke(main, ["db", "upgrade"], catch_exceptions=False).exit_code == 0
    made = runner.invoke(main, ["keys", "create", "--role", "auditor", "--name", "Li Na"],
                         catch_exceptions=False)
    key = made.output.splitlines()[-1]
    key_id = key_id_of(key)
    listed = runner.invoke(main, ["keys", "list"], catch_exceptions=False)
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if line.startswith(key_id))
    assert row.split()[:3] == [key_id, "auditor", "active"] and "Li Na" in row
    assert key.split("_", 2)[2] not in listed.output
    revoked = runner.invoke(main, ["keys", "revoke", key_id], catch_exceptions=False)
    assert revoked.exit_code == 0, revoked.output
    assert f"revoked {key_id}" in revoked.output and "30 s" in revoked.output
    listed = runner.invoke(main, ["keys", "list"], catch_exceptions=False)
    row = next(line for line in listed.output.splitlines() if line.startswith(key_id))
    assert row.split()[:3] == [key_id, "auditor", "revoked"]
    again = runner.invoke(main, ["keys", "revoke", key_id], catch_exceptions=False)
    assert again.exit_code == 0 and "already revoked" in again.output
    unknown = runner.invoke(main, ["keys", "revoke", "0123456789ab"], catch_exceptions=False)
    assert unknown.exit_code == 1 and "no key 0123456789ab" in unknown.output
    store = AuditStore.from_url(sqlite_url)
    try:
        kinds = [(r.kind, r.actor, r.payload["key_id"]) for r in store.iter_records(
            AuditQuery(kinds=("key.created", "key.revoked")))]
    finally:
        store.dispose()
    assert kinds == [("key.created", "system:cli", key_id), ("key.revoked", "system:cli", key_id)]


@pytest.mark.parametrize("args", [["keys", "list"], ["keys", "revoke", "0123456789ab"]])
def test_keys_list_and_revoke_refuse_a_database_not_at_head(sqlite_url, tmp_path, args):
    from service.persistence.migrations import head_revision

    refused = _runner(sqlite_url, tmp_path).invoke(main, args, catch_exceptions=False)
    assert refused.exit_code == 1
    assert refused.output == (f"Error: database schema is at revision none, head is "
                              f'{head_revision()}: run "flashloan db upgrade"\n')
