"""Who may do what (B9): a pure table of roles and permissions, no Django, no I/O."""

from enum import StrEnum


class Role(StrEnum):
    ADMINISTRATOR = "administrator"
    MANAGER = "manager"
    CASHIER = "cashier"
    CUSTOMER = "customer"
    INTEGRATION = "integration"  # 1C and other back-office systems, by API key
    SITE = "site"  # the shop's web site, by API key

    @property
    def is_person(self) -> bool:
        return self not in (Role.INTEGRATION, Role.SITE)

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Permission(StrEnum):
    ORDERS_INTAKE = "orders.intake"  # place new orders
    ORDERS_READ_ALL = "orders.read_all"
    ORDERS_READ_OWN = "orders.read_own"
    ORDERS_EDIT = "orders.edit"  # items, mark for removal
    ORDERS_SET_STATUS = "orders.set_status"
    ORDERS_PURGE = "orders.purge"
    ORDERS_EDIT_QUICK = "orders.edit_quick"
    SETTINGS_CHANGE = "settings.change"
    NOTIFICATIONS_OWN = "notifications.own"
    PAYMENTS_TAKE = "payments.take"  # the cash desk: payments, quick sales
    SHIFTS = "payments.shifts"  # open and close shifts, X reports
    DOCUMENTS = "payments.documents"  # documents «based on» an order
    REFUNDS = "payments.refunds"
    REGISTERS_MANAGE = "fiscal.registers"
    RECEIPTS_READ_ALL = "fiscal.receipts_read_all"
    EXCHANGE_READ = "exchange.read"  # what 1C confirmed and reported of an order


_STAFF_READ = {Permission.ORDERS_READ_ALL, Permission.RECEIPTS_READ_ALL, Permission.EXCHANGE_READ}
_CASH_DESK = {Permission.PAYMENTS_TAKE, Permission.SHIFTS}
_BACK_OFFICE_MONEY = {Permission.DOCUMENTS, Permission.REFUNDS}
_ORDER_EDITING = {Permission.ORDERS_INTAKE, Permission.ORDERS_EDIT, Permission.ORDERS_SET_STATUS}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMINISTRATOR: frozenset(
        {
            *_STAFF_READ,
            *_ORDER_EDITING,
            *_CASH_DESK,
            *_BACK_OFFICE_MONEY,
            Permission.REGISTERS_MANAGE,
            Permission.ORDERS_PURGE,
            Permission.ORDERS_EDIT_QUICK,
            Permission.SETTINGS_CHANGE,
        }
    ),
    Role.MANAGER: frozenset({*_STAFF_READ, *_ORDER_EDITING, *_BACK_OFFICE_MONEY}),
    Role.CASHIER: frozenset({*_STAFF_READ, *_CASH_DESK, Permission.ORDERS_SET_STATUS}),
    Role.CUSTOMER: frozenset({Permission.ORDERS_READ_OWN, Permission.NOTIFICATIONS_OWN}),
    Role.SITE: frozenset({Permission.ORDERS_INTAKE, Permission.ORDERS_READ_ALL}),  # receipts stay in the back office
    Role.INTEGRATION: frozenset({*_STAFF_READ, *_ORDER_EDITING, Permission.DOCUMENTS}),
}


def role_allows(role: str, permission: Permission, *, extra_grants: frozenset[Permission] = frozenset()) -> bool:
    try:
        granted = ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False
    return permission in granted or permission in extra_grants
