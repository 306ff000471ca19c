"""Who is acting: a person signed in, a machine with an API key, or the system itself.

Services take an Actor, check its rights and write it into the event log, so the same service
serves a page, an API call and an exchange unchanged.
"""

from dataclasses import dataclass, field

from orderdesk.core.errors import PermissionDenied
from orderdesk.core.rights import Permission, Role, role_allows


@dataclass(frozen=True)
class Actor:
    role: str
    label: str
    user_id: int | None = None
    api_key_id: int | None = None
    language: str = "ru"
    extra_grants: frozenset[Permission] = field(default=frozenset())

    def can(self, permission: Permission) -> bool:
        return role_allows(self.role, permission, extra_grants=self.extra_grants)

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise PermissionDenied(permission)

    @classmethod
    def for_user(cls, user) -> "Actor":
        grants = frozenset({Permission.ORDERS_EDIT_QUICK}) if user.can_edit_quick_orders else frozenset()
        return cls(role=user.role, label=user.email, user_id=user.pk, language=user.language, extra_grants=grants)

    @classmethod
    def for_api_key(cls, key) -> "Actor":
        return cls(role=key.role, label=f"{key.role}:{key.name}", api_key_id=key.pk)


SYSTEM = Actor(role=Role.ADMINISTRATOR, label="system")
