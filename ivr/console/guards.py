"""Guards for the login form against floods: a per-address throttle on attempts, and a gate that runs
password hashing in a few worker threads (never on the event loop, so a login flood cannot stall
other requests) and refuses new work when too much waits."""

from __future__ import annotations

import asyncio
import ipaddress
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

LOGIN_ATTEMPTS = 10
LOGIN_WINDOW_S = 60.0
MAX_TRACKED_CLIENTS = 10_000
HASH_WORKERS = 2
HASH_WAITING = 32
BUSY_RETRY_AFTER_S = 5


def client_key(host: str | None) -> str:
    """Whom the throttle counts: the client's IP address; an IPv6 client by its /64 network (one
    host usually holds a whole /64), an IPv4-mapped IPv6 address as the IPv4 address."""
    if not host:
        return "?"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class LoginThrottle:
    """At most `attempts` login attempts per `window_s` seconds from one client (a sliding window).

    In memory, for at most `max_clients` clients: past that the one seen least recently is forgotten,
    so a flood from many addresses cannot grow it without limit. Refused attempts are not counted.
    """

    def __init__(self, attempts: int = LOGIN_ATTEMPTS, window_s: float = LOGIN_WINDOW_S,
                 max_clients: int = MAX_TRACKED_CLIENTS, clock: Callable[[], float] = time.monotonic) -> None:
        if attempts < 1 or window_s <= 0 or max_clients < 1:
            raise ValueError("attempts, window_s and max_clients must be positive")
        self.attempts, self.window_s, self.max_clients = attempts, window_s, max_clients
        self._clock = clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def hit(self, client: str) -> int:
        """Count an attempt by `client`: 0 when it may go on, else how many seconds until it may try again."""
        now = self._clock()
        with self._lock:
            times = self._seen.pop(client, None) or deque(maxlen=self.attempts)
            while times and times[0] <= now - self.window_s:
                times.popleft()
            self._seen[client] = times  # now the most recently seen
            if len(times) >= self.attempts:
                return max(1, math.ceil(times[0] + self.window_s - now))
            times.append(now)
            while len(self._seen) > self.max_clients:
                self._seen.popitem(last=False)
            return 0


class GateFull(Exception):
    """Too many password hashes are running or waiting: the caller should answer 503."""


class HashGate:
    """Runs password hashing (and the account look-up around it) in `workers` threads of its own:
    at most that many hashes at once, whatever the flood, and the event loop stays free. At most
    `waiting` more wait for a thread; past that `run` raises GateFull at once."""

    def __init__(self, workers: int = HASH_WORKERS, waiting: int = HASH_WAITING) -> None:
        self.workers, self.waiting = workers, waiting
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ivr-console-hash")
        self._pending = 0
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """Jobs running or waiting for a thread."""
        return self._pending

    def _release(self, _done: object = None) -> None:
        with self._lock:
            self._pending -= 1

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        with self._lock:
            if self._pending >= self.workers + self.waiting:
                raise GateFull
            self._pending += 1
        try:
            future = self._pool.submit(fn, *args, **kwargs)
        except RuntimeError:  # shut down
            self._release()
            raise GateFull from None
        # counted until the job is done or cancelled, even when the request that wanted it has gone
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
