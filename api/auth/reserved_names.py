"""Names nobody may register: the guest owner(s) of anonymous uploads and the
account the CLI's ``create-admin`` makes.

Registering ``guest`` would hand a stranger every anonymous upload;
registering ``ADMIN_USERNAME`` or ``ADMIN_EMAIL`` first would make
``create-admin`` report "already exists" and create nothing.  Names are
compared after NFKC normalisation and case folding, so full-width letters or
ligatures that the database's ``lower()`` keeps apart cannot slip past.
"""

from __future__ import annotations

import unicodedata

from t2m.settings import Settings

GUEST_USERNAME = "guest"
GUEST_PREFIX = "guest-"


def normalised(name: str) -> str:
    return unicodedata.normalize("NFKC", name).casefold().strip()


def reserved_fields(settings: Settings, *, username: str, email: str) -> dict[str, list[str]]:
    """Field → error messages for every reserved value among those given."""
    admin_names = {normalised(settings.admin_username), normalised(settings.admin_email)}
    problems: dict[str, list[str]] = {}
    for field, value in (("username", username), ("email", email)):
        name = normalised(value)
        if name == GUEST_USERNAME or name.startswith(GUEST_PREFIX) or name in admin_names:
            problems[field] = ["This name is reserved"]
    return problems
