"""Signed links: an HMAC-SHA256 over an unambiguous statement of what a link grants.

A link grants one *kind* of access (the original bytes, a thumbnail, a
rendition, …) to one file, on behalf of the user it was issued to, until it
expires.  The kind is signed explicitly, so a thumbnail link can never be
turned into a download of the original by dropping or adding parameters.

Two rules make the signed message unambiguous:

- every value is checked against its schema (an exact ASCII pattern) before
  anything is verified, so no value can carry a separator, a look-alike
  character or a second spelling of the same number;
- the message is the JSON of those validated values (sorted keys, ASCII
  only, a version tag), so two different grants never serialise alike.

The query of a link must hold exactly the parameters of its kind, each once:
an unknown, repeated or missing parameter is refused before the HMAC is
computed.  A new kind is one entry in ``LinkKind`` and ``KIND_PARAMETERS``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from t2m.errors import PermissionDenied

FORMAT_VERSION = 1


class LinkKind(StrEnum):
    """What a link gives access to."""

    ORIGINAL = "original"
    THUMBNAIL = "thumbnail"
    RENDITION = "rendition"
    CAPTIONS = "captions"  # a generated video's caption file (vtt or srt)
    # A video's HLS tree: its playlists, segments, captions and seek previews.
    # One signature covers the whole tree of one file (the path is not signed):
    # playlists are rewritten with it, so a player carries it to every request.
    HLS = "hls"


# Patterns are matched whole (fullmatch) and are ASCII only: ``\d`` would
# admit other scripts' digits and ``$`` a trailing newline.
_ASCII = re.ASCII
_USER_ID = re.compile(r"usr_[0-9a-f]{24}", _ASCII)
_FILE_ID = re.compile(r"file_[0-9a-f]{24}", _ASCII)
_EXPIRES = re.compile(r"[1-9][0-9]{0,11}", _ASCII)
_SIGNATURE = re.compile(r"[0-9a-f]{64}", _ASCII)

# The parameters each kind carries, all required, with the schema of each value.
KIND_PARAMETERS: dict[LinkKind, dict[str, re.Pattern[str]]] = {
    LinkKind.ORIGINAL: {"inline": re.compile(r"true|false", _ASCII)},
    LinkKind.THUMBNAIL: {"size": re.compile(r"small|medium|large", _ASCII)},
    LinkKind.RENDITION: {"quality": re.compile(r"auto|original|[0-9]{3,4}p", _ASCII)},
    LinkKind.CAPTIONS: {"format": re.compile(r"vtt|srt", _ASCII)},
    LinkKind.HLS: {},
}
# Present in every link, next to the kind's own parameters.
ENVELOPE_PARAMETERS = ("user_id", "expires", "kind", "signature")


class SignatureInvalid(PermissionDenied):
    code = "SIGNATURE_INVALID"
    default_message = "The signed link is invalid or has been altered"


class SignatureExpired(PermissionDenied):
    code = "SIGNATURE_EXPIRED"
    default_message = "The signed link has expired"


@dataclass(frozen=True, slots=True)
class Grant:
    """What a verified link allows."""

    file_id: str
    user_id: str
    kind: LinkKind
    params: Mapping[str, str]
    expires: int


def _canonical(grant: Grant) -> bytes:
    statement = {
        "v": FORMAT_VERSION,
        "file_id": grant.file_id,
        "user_id": grant.user_id,
        "kind": grant.kind.value,
        "params": dict(grant.params),
        "expires": grant.expires,
    }
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


def sign(secret: str, grant: Grant) -> str:
    return hmac.new(secret.encode("utf-8"), _canonical(grant), hashlib.sha256).hexdigest()


def _problems(file_id: str, user_id: str, kind: LinkKind, params: Mapping[str, str]) -> list[str]:
    """Why these values cannot be signed or verified (empty when they can)."""
    problems = []
    if not _FILE_ID.fullmatch(file_id):
        problems.append("file id")
    if not _USER_ID.fullmatch(user_id):
        problems.append("user_id")
    schema = KIND_PARAMETERS[kind]
    if set(params) != set(schema):
        problems.append(f"parameters of a {kind.value} link")
    problems += [
        name
        for name, value in params.items()
        if name in schema and not schema[name].fullmatch(value)
    ]
    return problems


def signed_query(
    secret: str,
    file_id: str,
    user_id: str,
    kind: LinkKind,
    params: Mapping[str, str],
    expires_in: int,
    *,
    now: float | None = None,
) -> tuple[str, int]:
    """The query string of a signed link and its expiry (unix seconds)."""
    problems = _problems(file_id, user_id, kind, params)
    if problems:  # the caller validated its input; this is a bug, not bad input
        raise ValueError(f"cannot sign a link with invalid {', '.join(problems)}")
    expires = int((now if now is not None else time.time()) + expires_in)
    grant = Grant(file_id, user_id, kind, dict(params), expires)
    query = {
        "kind": kind.value,
        **params,
        "user_id": user_id,
        "expires": str(expires),
        "signature": sign(secret, grant),
    }
    # Every value is from a fixed ASCII alphabet: nothing needs escaping.
    return "&".join(f"{name}={value}" for name, value in query.items()), expires


def verify(
    secret: str,
    file_id: str,
    query: Iterable[tuple[str, str]],
    *,
    now: float | None = None,
) -> Grant:
    """Check a signed link's path file id and query (every pair, repeats
    included, as decoded from the URL); return what it grants."""
    pairs = list(query)
    counts = Counter(name for name, _ in pairs)
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        raise SignatureInvalid(f"Repeated parameters: {', '.join(repeated)}")
    values = dict(pairs)
    kind_value = values.get("kind", "")
    kind = next((k for k in LinkKind if k.value == kind_value), None)
    if kind is None:
        raise SignatureInvalid("The link does not name a known kind of access")
    expected_names = {*ENVELOPE_PARAMETERS, *KIND_PARAMETERS[kind]}
    unknown = sorted(set(values) - expected_names)
    if unknown:
        raise SignatureInvalid(f"Unexpected parameters: {', '.join(unknown)}")
    missing = sorted(expected_names - set(values))
    if missing:
        raise SignatureInvalid(f"Missing parameters: {', '.join(missing)}")
    params = {name: values[name] for name in KIND_PARAMETERS[kind]}
    problems = _problems(file_id, values["user_id"], kind, params)
    if not _EXPIRES.fullmatch(values["expires"]):
        problems.append("expires")
    if not _SIGNATURE.fullmatch(values["signature"]):
        problems.append("signature")
    if problems:
        raise SignatureInvalid(f"Malformed {', '.join(problems)}")
    grant = Grant(file_id, values["user_id"], kind, params, int(values["expires"]))
    if not hmac.compare_digest(sign(secret, grant), values["signature"]):
        raise SignatureInvalid()
    if grant.expires < (now if now is not None else time.time()):
        raise SignatureExpired()
    return grant
