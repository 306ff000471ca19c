"""The database settings read from the environment (orderdesk/settings.py)."""

import pytest

from orderdesk import settings

PG_URL = "postgres://shop:secret@db.example:5432/orderdesk?sslmode=require&connect_timeout=5"
URL_OPTIONS = {"sslmode": "require", "connect_timeout": 5}


def test_postgresql_binds_parameters_on_the_server_and_prepares_by_default_beside_the_urls_own_options(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", PG_URL)
    monkeypatch.delenv("DB_SERVER_SIDE_BINDING", raising=False)

    assert settings._database_from_env()["OPTIONS"] == {**URL_OPTIONS, "server_side_binding": True,
                                                        "prepare_threshold": 5}


def test_server_side_binding_can_be_turned_off_for_a_pooler_that_keeps_no_prepared_statements(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", PG_URL)
    monkeypatch.setenv("DB_SERVER_SIDE_BINDING", "0")

    assert settings._database_from_env()["OPTIONS"] == URL_OPTIONS
