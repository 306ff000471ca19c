"""The database settings read from the environment (orderdesk/settings.py)."""

import pytest

from orderdesk import settings

PG_URL = "postgres://shop:secret@db.example:5432/orderdesk"


def test_postgresql_binds_parameters_on_the_server_by_default(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", PG_URL)
    monkeypatch.delenv("DB_SERVER_SIDE_BINDING", raising=False)

    assert settings._database_from_env()["OPTIONS"] == {"server_side_binding": True}


@pytest.mark.parametrize("binding, options", [("0", {}), ("1", {"server_side_binding": True})])
def test_server_side_binding_can_be_turned_off_for_a_pooler_that_keeps_no_prepared_statements(
        monkeypatch, binding, options):
    monkeypatch.setenv("DATABASE_URL", PG_URL)
    monkeypatch.setenv("DB_SERVER_SIDE_BINDING", binding)

    assert settings._database_from_env().get("OPTIONS", {}) == options


def test_sqlite_is_not_given_postgresql_options(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'shop.sqlite3'}")

    config = settings._database_from_env()

    assert config["ENGINE"] == "orderdesk.core.sqlite"
    assert "server_side_binding" not in config["OPTIONS"]
