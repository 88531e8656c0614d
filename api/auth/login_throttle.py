"""Slow down password guessing without letting anyone lock the owner out.

Every sign-in attempt first *claims* a try with one Lua call that checks and
counts at once, before the password is looked at: of N concurrent guesses at
most the limit get past the claim, whichever API process they reach (reading
the counters first and writing them after the check let a parallel burst
through).  The claimed try counts as a failure until the password proves
right, when it is taken back.

- Per account *and* address: ``LOGIN_MAX_FAILURES`` failures lock that pair
  out for the failure window (429 with ``Retry-After``, right password or not,
  so the burst learns nothing).
- Per address: four times that many failures, over any accounts, lock the
  address out (credential stuffing from one host).
- Per account, over every address: never a lockout — that would hand anyone
  a way to lock the owner or the admin out — but a delay that doubles with
  each failure past the limit, capped at ``LOGIN_MAX_DELAY``, so guessing from
  many addresses gets slow while the owner still gets in.

Only INCR, DECR, GET, DEL, PTTL and PEXPIRE are used: Redis 6.2 (the embedded
server) runs it as well as 7.  When Redis is down the throttle steps aside
(logged) rather than locking everyone out.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import redis.asyncio as aioredis
import redis.exceptions

from t2m.errors import RateLimited
from t2m.redis_client import redis_key
from t2m.settings import Settings

log = logging.getLogger(__name__)

# An address may fail this many times the per-account limit, over all accounts.
ADDRESS_LIMIT_FACTOR = 4
# The first delay past the account's limit, doubled at each further failure.
FIRST_DELAY_S = 0.25

# KEYS: account+address, address, account.  ARGV: pair limit, address limit,
# window ms.  Returns {1, account failures before this try} when the try is
# claimed (and counted on all three keys), {0, ms until the lock lapses} when
# refused.
_CLAIM = """
local limits = {tonumber(ARGV[1]), tonumber(ARGV[2])}
for i = 1, 2 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') >= limits[i] then
    return {0, redis.call('PTTL', KEYS[i])}
  end
end
local account_failures = tonumber(redis.call('GET', KEYS[3]) or '0')
for i = 1, 3 do
  if redis.call('INCR', KEYS[i]) == 1 then
    redis.call('PEXPIRE', KEYS[i], ARGV[3])
  end
end
return {1, account_failures}
"""

# The claimed try was right: it was no failure.  The pair and the account
# start afresh; the address only gets this one try back.
_SUCCEEDED = """
redis.call('DEL', KEYS[1], KEYS[3])
if redis.call('DECR', KEYS[2]) <= 0 then
  redis.call('DEL', KEYS[2])
end
return 1
"""


@dataclass(frozen=True)
class Claim:
    keys: list[str]
    delay_s: float


class LoginThrottle:
    def __init__(self, settings: Settings, client: aioredis.Redis) -> None:
        self.settings = settings
        self.client = client
        self._claim = client.register_script(_CLAIM)
        self._succeeded = client.register_script(_SUCCEEDED)

    def _keys(self, username: str, address: str) -> list[str]:
        account = username.strip().lower()
        return [
            redis_key(self.settings, "loginfail", "pair", account, address),
            redis_key(self.settings, "loginfail", "addr", address),
            redis_key(self.settings, "loginfail", "user", account),
        ]

    def delay_for(self, account_failures: int) -> float:
        over = account_failures - self.settings.login_max_failures
        if over < 0:
            return 0.0
        return min(self.settings.login_max_delay_s, FIRST_DELAY_S * 2.0**over)

    async def claim(self, username: str, address: str) -> Claim | None:
        """Count one try, or raise 429 when this address may not try now.
        ``None`` when Redis is unavailable (the throttle steps aside)."""
        keys = self._keys(username, address)
        limit = self.settings.login_max_failures
        window_ms = self.settings.login_failure_window_s * 1000
        try:
            claimed, value = await self._claim(
                keys=keys, args=[limit, limit * ADDRESS_LIMIT_FACTOR, window_ms]
            )
        except (redis.exceptions.RedisError, OSError):
            log.warning("login throttle unavailable (Redis)", exc_info=True)
            return None
        if not int(claimed):
            retry_after = max(1, -(-int(value) // 1000))
            raise RateLimited(
                "Too many failed sign-in attempts",
                f"Try again in {retry_after} seconds.",
                headers={"Retry-After": str(retry_after)},
            )
        return Claim(keys, self.delay_for(int(value)))

    async def wait(self, claim: Claim | None) -> None:
        if claim is not None and claim.delay_s > 0:
            await asyncio.sleep(claim.delay_s)

    async def succeeded(self, claim: Claim | None) -> None:
        if claim is None:
            return
        try:
            await self._succeeded(keys=claim.keys)
        except (redis.exceptions.RedisError, OSError):
            log.warning("login throttle unavailable (Redis)", exc_info=True)
