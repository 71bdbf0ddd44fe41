"""Issue 8 item 9: every change is an event (taxonomy, users, API keys, passwords, vetting,
run failures), secrets never enter the log, and a change that changed nothing writes none."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.common.principal import Principal
from app.events import repository
from app.models import Event, User
from tests.app.conftest import Cast
from tests.factories import PASSWORD, query_plan

API = "/api/v1"


def events(db: Session, action: str) -> list[Event]:
    return list(db.scalars(select(Event).where(Event.action == action).order_by(Event.id)))


def no_secrets(event: Event) -> None:
    text = json.dumps([event.before, event.after], ensure_ascii=False)
    assert "hash" not in text
    assert PASSWORD not in text


class TestTaxonomy:
    def test_created_and_updated_are_events_and_a_no_op_is_none(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        admin = cast.headers(cast.admin)
        body = {"key": "energy_saving", "name_zh": "节能降耗", "name_en": "Energy saving"}
        assert client.post(f"{API}/categories", json=body, headers=admin).status_code == 201
        assert len(events(db, "category.created")) == 1
        url = f"{API}/categories/energy_saving"
        first = client.patch(url, json={"route_days": 2}, headers=admin | {"If-Match": '"1"'})
        assert first.status_code == 200
        again = admin | {"If-Match": first.headers["etag"]}
        assert client.patch(url, json={"route_days": 2}, headers=again).status_code == 200
        (updated,) = events(db, "category.updated")
        assert (updated.before, updated.after) == (
            {"route_days": 1, "version": 1},
            {"route_days": 2, "version": 2},
        )
        assert updated.actor_id == cast.admin.id


class TestUsersAndKeys:
    def test_a_user_update_is_an_event_only_when_something_changed(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        url, admin = f"{API}/users/{cast.coordinator.id}", cast.headers(cast.admin)
        body = {"region_prefixes": ["3505"]}
        first = client.patch(url, json=body, headers=admin | {"If-Match": '"1"'})
        assert first.status_code == 200
        again = admin | {"If-Match": first.headers["etag"]}
        assert client.patch(url, json=body, headers=again).status_code == 200
        (updated,) = events(db, "user.updated")
        assert updated.after is not None
        assert updated.after["region_prefixes"] == ["3505"]
        no_secrets(updated)

    def test_password_change_is_an_event_without_the_password(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        r = client.post(
            f"{API}/users/me/password",
            json={"current_password": PASSWORD, "new_password": "another long password 42"},
            headers=cast.headers(cast.expert_user),
        )
        assert r.status_code == 204, r.text
        (changed,) = events(db, "user.password_changed")
        assert changed.actor_id == cast.expert_user.id
        no_secrets(changed)
        assert "another long password" not in json.dumps(changed.after)

    def test_api_keys_created_and_revoked_once(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        headers = cast.headers(cast.coordinator)
        created = client.post(f"{API}/api-keys", json={"name": "ERP"}, headers=headers).json()
        for _ in range(2):
            client.delete(f"{API}/api-keys/{created['id']}", headers=headers)
        (made,) = events(db, "api_key.created")
        (revoked,) = events(db, "api_key.revoked")
        assert made.entity_id == revoked.entity_id == created["id"]
        no_secrets(made)
        assert created["key"] not in json.dumps(made.after)

    def test_self_registration_is_an_event(self, client: TestClient, db: Session) -> None:
        body = {
            "email": "solo@example.cn",
            "password": PASSWORD,
            "full_name": "独立专家",
            "provider": {"kind": "expert", "name": "独立专家", "skills": {"export": 2}},
        }
        assert client.post(f"{API}/auth/register/provider", json=body).status_code == 201
        (registered,) = events(db, "user.registered")
        assert registered.after is not None
        assert registered.after["email"] == "solo@example.cn"
        no_secrets(registered)


class TestAppendOnly:
    def test_an_event_keeps_its_actor_when_the_user_row_is_gone(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        """Nothing rewrites an audit row: removing a user (by hand, in the database: the
        product only deactivates) leaves the id and label its events recorded."""
        admin = cast.headers(cast.admin)
        body = {"key": "energy_saving", "name_zh": "节能降耗", "name_en": "Energy saving"}
        assert client.post(f"{API}/categories", json=body, headers=admin).status_code == 201
        actor_id, label = cast.admin.id, cast.admin.email
        db.execute(delete(User).where(User.id == actor_id))
        db.commit()
        (created,) = events(db, "category.created")
        db.refresh(created)
        assert (created.actor_id, created.actor_label) == (actor_id, label)


class TestEntityHistory:
    """One entity's history is a filter of the whole log: it answers that entity's events
    alone, with their total, and reads them from ``ix_events_entity`` rather than scanning
    a log that only grows."""

    def test_the_filter_answers_one_entitys_events(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        admin = cast.headers(cast.admin)
        for user, prefixes in ((cast.coordinator, "3505"), (cast.other_coordinator, "4101")):
            url = f"{API}/users/{user.id}"
            body = {"region_prefixes": [prefixes]}
            assert client.patch(url, json=body, headers=admin | {"If-Match": '"1"'}).is_success
        url = f"{API}/users/{cast.coordinator.id}"
        body = {"region_prefixes": ["3506"]}
        assert client.patch(url, json=body, headers=admin | {"If-Match": '"2"'}).is_success
        query = {"entity_type": "users", "entity_id": cast.coordinator.id}
        page = client.get(f"{API}/events", params=query, headers=admin).json()
        assert [e["after"]["region_prefixes"] for e in page["items"]] == [["3505"], ["3506"]]
        assert {e["entity_id"] for e in page["items"]} == {cast.coordinator.id}
        assert page["total"] == 2
        assert len(events(db, "user.updated")) == 3

    def test_the_filter_reads_the_entity_index(self, db: Session, cast: Cast) -> None:
        filters = repository.EventFilter(entity_type="help_requests", entity_id=1)
        scoped = repository.filtered(repository.visible_to(Principal.of(cast.admin)), filters)
        plan = query_plan(db, scoped.order_by(Event.id).limit(51))
        assert "ix_events_entity" in plan, plan
