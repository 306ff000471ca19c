"""The SQLite backend remembers how it rewrote a statement's placeholders (orderdesk/core/sqlite):
a remembered statement must run exactly as Django's own rewrite would have it."""

import pytest
from django.db import connection
from django.db.backends.sqlite3.base import FORMAT_QMARK_REGEX

from orderdesk.core.models import Counter
from orderdesk.core.sqlite.base import _qmark_query


def _sqlite_only():
    if connection.vendor != "sqlite":
        pytest.skip("the placeholder rewrite is SQLite's; psycopg binds %s itself (this test runs in the SQLite pass)")


@pytest.mark.parametrize("statement", [
    "SELECT %s",
    "SELECT '100%%' || %s",  # a literal percent sign, escaped as Django escapes it
    "SELECT '%%s' || %s",  # an escaped percent before an s is not a placeholder
    "UPDATE t SET a = %s, b = %s WHERE c LIKE '%%x%%' AND d = %s",
])
def test_b06_a_remembered_rewrite_is_the_one_django_makes(statement):
    assert _qmark_query(statement) == FORMAT_QMARK_REGEX.sub("?", statement).replace("%%", "%")


@pytest.mark.django_db
def test_b06_a_statement_run_again_reuses_its_rewrite_and_binds_the_new_values():
    _sqlite_only()
    statement = "SELECT '100%%' || %s || %s"
    with connection.cursor() as cursor:
        cursor.execute(statement, ["a", 1])
        first = cursor.fetchone()[0]
        hits = _qmark_query.cache_info().hits
        cursor.execute(statement, ["b", 2])
        second = cursor.fetchone()[0]
    assert (first, second) == ("100%a1", "100%b2")
    assert _qmark_query.cache_info().hits == hits + 1


@pytest.mark.django_db
def test_b06_named_parameters_are_rewritten_as_django_rewrites_them():
    _sqlite_only()
    Counter.objects.create(name="named", value=7)
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM core_counter WHERE name = %(name)s", {"name": "named"})
        assert cursor.fetchone()[0] == 7
