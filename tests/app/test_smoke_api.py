from __future__ import annotations

from fastapi.testclient import TestClient

from tests.app.conftest import Cast


def test_health_and_me(client: TestClient, cast: Cast) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    me = client.get("/api/v1/users/me", headers=cast.headers(cast.coordinator))
    assert me.status_code == 200, me.text
    assert me.json()["region_prefixes"] == ["35"]
    r = client.get("/api/v1/enterprises", headers=cast.headers(cast.coordinator))
    assert r.status_code == 200, r.text
    assert [e["id"] for e in r.json()["items"]] == [cast.ent.id]
