"""The demo logins: `csm`, `manager` and `admin` (password `csp-demo`) and a few more CSMs."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

DEMO_PASSWORD = "csp-demo"
CSM_GROUP = "CSM"
MANAGER_GROUP = "Manager"
# username -> (first name, last name, group); the CSMs own the demo book (generator.DEMO_OWNERS).
DEMO_USERS = {
    "csm": ("Casey", "Morgan", CSM_GROUP),
    "csm.alex": ("Alex", "Rivera", CSM_GROUP),
    "csm.priya": ("Priya", "Nair", CSM_GROUP),
    "csm.sam": ("Sam", "Okoro", CSM_GROUP),
    "manager": ("Morgan", "Lee", MANAGER_GROUP),
    "admin": ("Ada", "Admin", None),
}


@transaction.atomic
def demo_users_ensure() -> dict[str, object]:
    """Create the demo users and groups that are missing; returns the users by username.

    Existing users keep their password (someone may have changed it), but their groups and the
    admin's rights are put back, so the demo logins always see what the docs promise."""
    User = get_user_model()
    groups = {
        name: Group.objects.get_or_create(name=name)[0] for name in (CSM_GROUP, MANAGER_GROUP)
    }
    users = {}
    for username, (first, last, group) in DEMO_USERS.items():
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "email": f"{username}@csp.example"},
        )
        if created:
            user.set_password(DEMO_PASSWORD)
        if username == "admin":
            user.is_staff = user.is_superuser = True
        user.is_active = True
        user.save()
        if group:
            user.groups.add(groups[group])
        users[username] = user
    return users
