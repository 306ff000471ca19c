"""B9: who may do what, as a pure table (rights.py) and as the Actor services check. No database."""

from types import SimpleNamespace

import pytest

from orderdesk.core import errors
from orderdesk.core.actors import SYSTEM, Actor
from orderdesk.core.rights import Permission, Role, role_allows

P = Permission
ALL_ROLES = [role.value for role in Role]


def allowed(role: str) -> set[Permission]:
    return {permission for permission in Permission if role_allows(role, permission)}


def test_b09_customer_reads_only_his_own_orders_and_edits_nothing():
    assert allowed("customer") == {P.ORDERS_READ_OWN, P.NOTIFICATIONS_OWN}
    assert not role_allows("customer", P.ORDERS_READ_ALL)
    assert not role_allows("customer", P.ORDERS_EDIT)
    assert not role_allows("customer", P.ORDERS_SET_STATUS)


def test_b09_site_places_and_reads_orders_but_does_not_work_them():
    assert role_allows("site", P.ORDERS_INTAKE)
    assert role_allows("site", P.ORDERS_READ_ALL)
    for permission in (P.ORDERS_SET_STATUS, P.ORDERS_EDIT, P.ORDERS_PURGE, P.ORDERS_EDIT_QUICK, P.SETTINGS_CHANGE):
        assert not role_allows("site", permission), permission


@pytest.mark.parametrize("permission", [P.ORDERS_PURGE, P.SETTINGS_CHANGE])
def test_b09_only_administrator_purges_and_changes_settings(permission):
    assert [role for role in ALL_ROLES if role_allows(role, permission)] == ["administrator"]


def test_b09_cashier_sets_status_but_does_not_edit_items():
    assert role_allows("cashier", P.ORDERS_SET_STATUS)
    assert role_allows("cashier", P.ORDERS_READ_ALL)
    assert not role_allows("cashier", P.ORDERS_EDIT)
    assert not role_allows("cashier", P.ORDERS_INTAKE)


def test_b09_manager_works_orders_without_admin_rights():
    assert {P.ORDERS_INTAKE, P.ORDERS_READ_ALL, P.ORDERS_EDIT, P.ORDERS_SET_STATUS} <= allowed("manager")
    assert not role_allows("manager", P.ORDERS_PURGE)
    assert not role_allows("manager", P.SETTINGS_CHANGE)


def test_b09_integration_works_orders_but_cannot_purge_or_configure():
    assert {P.ORDERS_INTAKE, P.ORDERS_READ_ALL, P.ORDERS_EDIT, P.ORDERS_SET_STATUS} <= allowed("integration")
    assert not role_allows("integration", P.ORDERS_PURGE)
    assert not role_allows("integration", P.SETTINGS_CHANGE)


def test_b09_administrator_may_do_everything_staff_does():
    assert allowed("administrator") >= allowed("manager") | allowed("cashier")


@pytest.mark.parametrize("role", ["manager", "cashier", "integration", "site", "customer"])
def test_r01_quick_orders_are_edited_only_with_the_right(role):
    assert not role_allows(role, P.ORDERS_EDIT_QUICK)
    assert role_allows(role, P.ORDERS_EDIT_QUICK, extra_grants=frozenset({P.ORDERS_EDIT_QUICK}))


def test_r01_administrator_edits_quick_orders_by_role():
    assert role_allows("administrator", P.ORDERS_EDIT_QUICK)


def test_b09_extra_grant_gives_only_what_it_names():
    grants = frozenset({P.ORDERS_EDIT_QUICK})
    assert {p for p in Permission if role_allows("cashier", p, extra_grants=grants)} == allowed("cashier") | grants


@pytest.mark.parametrize("role", ["", "admin", "Administrator", "root", "system"])
def test_b09_unknown_role_allows_nothing(role):
    assert allowed(role) == set()
    assert not role_allows(role, P.ORDERS_EDIT_QUICK, extra_grants=frozenset({P.ORDERS_EDIT_QUICK}))


def test_b09_only_people_are_persons():
    assert [role for role in Role if role.is_person] == [Role.ADMINISTRATOR, Role.MANAGER, Role.CASHIER, Role.CUSTOMER]


# ---- Actor ----


def test_b09_actor_require_refuses_with_a_403_naming_the_permission():
    customer = Actor(role="customer", label="anna@example.com")
    with pytest.raises(errors.PermissionDenied) as refused:
        customer.require(P.ORDERS_EDIT)
    assert isinstance(refused.value, errors.DomainError)
    assert refused.value.status == 403
    assert refused.value.code == "forbidden"
    assert refused.value.details == {"permission": "orders.edit"}
    assert str(refused.value)  # a message to show, not an empty error


def test_b09_actor_require_passes_silently_when_allowed():
    assert Actor(role="cashier", label="kassa").require(P.ORDERS_SET_STATUS) is None


def test_b09_actor_with_unknown_role_is_refused_everything():
    ghost = Actor(role="ghost", label="?")
    for permission in Permission:
        assert not ghost.can(permission)
        with pytest.raises(errors.PermissionDenied):
            ghost.require(permission)


def test_r01_user_with_the_quick_order_right_gets_it_as_actor():
    user = SimpleNamespace(pk=7, role="manager", email="m@example.com", language="en", can_edit_quick_orders=True)
    actor = Actor.for_user(user)
    assert actor.can(P.ORDERS_EDIT_QUICK)
    assert (actor.user_id, actor.role, actor.label, actor.language) == (7, "manager", "m@example.com", "en")
    assert not actor.can(P.ORDERS_PURGE)


def test_r01_user_without_the_quick_order_right_is_refused():
    user = SimpleNamespace(pk=8, role="manager", email="m2@example.com", language="ru", can_edit_quick_orders=False)
    with pytest.raises(errors.PermissionDenied):
        Actor.for_user(user).require(P.ORDERS_EDIT_QUICK)


def test_b09_api_key_actor_has_the_key_role_and_no_grants():
    key = SimpleNamespace(pk=3, role="site", name="shop")
    actor = Actor.for_api_key(key)
    assert (actor.role, actor.label, actor.api_key_id, actor.user_id) == ("site", "site:shop", 3, None)
    assert actor.can(P.ORDERS_INTAKE)
    assert not actor.can(P.ORDERS_SET_STATUS)


def test_b09_system_actor_is_an_administrator():
    assert SYSTEM.role == Role.ADMINISTRATOR
    assert all(SYSTEM.can(permission) for permission in allowed("administrator"))
