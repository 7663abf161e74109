"""Route tables and how they are mounted: one registration style for every API.

A route module declares its handlers on a module-level `Routes` table, next to the code:

    routes = Routes()

    @routes.get("/api/v1/domain")
    def list_domains(ctx: Context, request: Request) -> Response: ...

`trail.app` mounts each table with its API's error renderer, once. The mounted route binds the
worker's `Context`, counts the request as in flight (a stopping worker waits for those), turns
any exception into the API's error answer (unexpected ones are logged as 500s) and, for
`offload=True` routes, runs the handler on a small thread pool so a slow statistics query never
holds up the hits queued behind it on the same worker.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from robyn.robyn import FunctionInfo

from trail import _core
from trail.core import InvalidInput, StorageError, Unavailable
from trail.errors import ApiError, FieldError
from trail.storage import memory

if TYPE_CHECKING:
    from robyn import Robyn

    from trail.context import Context

log = logging.getLogger("trail.api")

Handler = Callable[["Context", Any], Any]
# An API's error renderer: the error (an ApiError) -> the response.
Renderer = Callable[[ApiError], Any]
METHODS = ("get", "post", "put", "patch", "delete", "options", "head")
QUERY_THREADS = 2


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    offload: bool = False


class Routes:
    """The routes of one module, in declaration order."""

    def __init__(self) -> None:
        self.table: list[Route] = []

    def route(self, method: str, path: str, offload: bool = False) -> Callable[[Handler], Handler]:
        if method not in METHODS:
            raise ValueError(f"unknown method {method}")

        def add(handler: Handler) -> Handler:
            self.table.append(Route(method, path, handler, offload))
            return handler

        return add

    def get(self, path: str, offload: bool = False) -> Callable[[Handler], Handler]:
        return self.route("get", path, offload)

    def post(self, path: str) -> Callable[[Handler], Handler]:
        return self.route("post", path)

    def put(self, path: str) -> Callable[[Handler], Handler]:
        return self.route("put", path)

    def patch(self, path: str) -> Callable[[Handler], Handler]:
        return self.route("patch", path)

    def delete(self, path: str) -> Callable[[Handler], Handler]:
        return self.route("delete", path)

    def options(self, path: str) -> Callable[[Handler], Handler]:
        return self.route("options", path)


class InFlight:
    """Counts requests inside handlers so a stopping worker can wait for them to finish.

    The count is the length of a list: `list.append` and `list.pop` are single calls the GIL
    makes atomic, so the request thread and the query pool's threads share it without a lock
    (a lock taken in `__enter__`/`__exit__` was about a third of `/hit`'s own Python).
    """

    def __init__(self) -> None:
        self._marks: list[None] = []
        self.enter = self._marks.append  # called with None
        self.leave = self._marks.pop

    @property
    def count(self) -> int:
        return len(self._marks)


IN_FLIGHT = InFlight()
_query_pool: ThreadPoolExecutor | None = None


class ThreadStates:
    """Keeps the Python thread state of each thread that calls the routes alive between requests.

    Robyn (0.88) calls a sync handler from its own Rust thread by taking the GIL with
    `PyGILState_Ensure` and giving it back with `PyGILState_Release`. The thread has no Python
    thread state of its own, so every request creates one and deletes it again: a 16 KiB frame
    stack mmap'd, zeroed and munmap'd (a TLB shootdown on every core), four `gettid` calls and
    the state's set-up, about 19 µs of CPU per request on the benchmark machine (a third of the
    bare Robyn route's cost). One extra `PyGILState_Ensure`, never released, on the first
    request a thread serves keeps its state registered, so Robyn's own pair only takes and
    releases the GIL. The thread state lives as long as the thread: Robyn's request threads
    live as long as the worker, and past `limit` threads (a Robyn that starts threads per
    request) nothing more is kept.
    """

    def __init__(self, limit: int = 64) -> None:
        self.limit = limit
        self.kept: set[int] = set()
        self._ensure = ctypes.pythonapi.PyGILState_Ensure  # a PyDLL call: the GIL stays held

    def keep(self, ident: int) -> None:
        """Called, GIL held, by a thread not in `kept` yet."""
        if len(self.kept) < self.limit:
            self.kept.add(ident)
            self._ensure()


THREAD_STATES = ThreadStates()


def as_api_error(error: Exception) -> ApiError | None:
    """The HTTP meaning of an exception from below the API layer, None if it has none (a bug)."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, InvalidInput):
        field, problem = error.args if len(error.args) == 2 else ("body", str(error))
        return FieldError(str(field), str(problem))
    if isinstance(error, Unavailable):
        return ApiError(503, "session store unavailable, retry later", headers={"retry-after": "1"})
    if isinstance(error, StorageError):
        return ApiError(503, "storage unavailable, retry later", headers={"retry-after": "1"})
    return None


def bind(ctx: Context, handler: Handler, render: Renderer) -> Callable[[Any], Any]:
    """The Robyn handler of one route: context bound, errors rendered, in-flight counted."""

    enter, leave = IN_FLIGHT.enter, IN_FLIGHT.leave
    kept, keep, thread = THREAD_STATES.kept, THREAD_STATES.keep, threading.get_ident

    def route(request: Any) -> Any:
        if thread() not in kept:
            keep(thread())
        enter(None)
        try:
            return handler(ctx, request)
        except Exception as e:
            error = as_api_error(e)
            if error is None:
                log.exception("unhandled error in %s %s", request.method, request.url.path)
                error = ApiError(500, "internal server error")
            elif error.status >= 500:
                log.error("%s %s: %s", request.method, request.url.path, e)
            return render(error)
        finally:
            leave()

    route.__name__ = handler.__name__
    route.__qualname__ = handler.__qualname__
    return route


class _Trim:
    """Give the memory a burst of queries freed back to the kernel once the burst is over.

    A statistics query allocates and frees tens of MB (numpy arrays through glibc's malloc, in
    the query threads' own arenas; blocks of 4 MiB and more in mappings of their own, see
    `trail.worker.fix_malloc_thresholds`); glibc keeps the smaller freed blocks inside its heaps
    for reuse, so a worker that answered a dashboard load would stay well above what it holds.
    The kernels of `trail._core` allocate through mimalloc, which keeps each thread's free
    pages in that thread's heap. When the last query in flight ends, every query thread gives
    its mimalloc heap's free pages back (`_core.release_memory`) and one of them runs
    `malloc_trim(0)` (glibc: every free page of every arena), after the answers went out; at
    most once per MIN_INTERVAL_S, the burst that ends sooner is trimmed when the interval is
    over. Polars' own allocator (jemalloc) returns its pages by itself. First the statistics'
    budget lets go of what only built the indexes (`memory.burst_over`)."""

    MIN_INTERVAL_S = 1.0

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.last = 0.0
        self.pending = False
        self.trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only
        self.release: Callable[[], None] = _core.release_memory

    def enter(self) -> None:
        with self.lock:
            self.running += 1

    def leave(self, pool: ThreadPoolExecutor) -> None:
        with self.lock:
            self.running -= 1
            if self.running or self.pending:
                return
            wait = self.last + self.MIN_INTERVAL_S - time.monotonic()
            self.pending = True
        if wait > 0:
            timer = threading.Timer(wait, self._due, (pool,))
            timer.daemon = True
            timer.start()
        else:
            self._due(pool)

    def _due(self, pool: ThreadPoolExecutor) -> None:
        with self.lock:
            self.pending = False
            if self.running:
                return  # a new burst: trimmed when it ends
            self.last = time.monotonic()
        memory.burst_over()  # what only built the indexes goes, and is trimmed with the rest
        # one task on each query thread: each waits for the others, so none takes two
        barrier = threading.Barrier(QUERY_THREADS, action=self._trim_glibc, timeout=5)
        for _ in range(QUERY_THREADS):
            pool.submit(self._run, barrier)

    def _trim_glibc(self) -> None:
        if self.trim is not None:
            self.trim(0)

    def _run(self, barrier: threading.Barrier) -> None:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass  # a thread busy elsewhere: this one's heap is released all the same
        self.release()


_trim = _Trim()


def offloaded(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Run a sync route on the query thread pool behind an async handler."""

    async def route(request: Any) -> Any:
        global _query_pool
        if _query_pool is None:
            _query_pool = ThreadPoolExecutor(QUERY_THREADS, thread_name_prefix="query")
        _trim.enter()
        try:
            return await asyncio.get_running_loop().run_in_executor(_query_pool, fn, request)
        finally:
            _trim.leave(_query_pool)

    route.__name__ = fn.__name__
    return route


def mount(app: Robyn, ctx: Context, routes: Routes, render: Renderer) -> None:
    """Register every route of a table on the app, rendering errors with `render`."""
    for r in routes.table:
        fn = bind(ctx, r.handler, render)
        if r.offload:
            fn = offloaded(fn)
        getattr(app, r.method)(r.path)(fn)
        call_directly(app, fn, r.offload)


def call_directly(app: Robyn, fn: Callable[[Any], Any], is_async: bool) -> None:
    """Have Robyn call the route just registered as it is, without its per-request wrapper.

    Robyn (0.88, pinned) wraps a handler in Python that, on every request, walks the signature's
    annotations, reads every request attribute (headers, body, query, path, url, form data,
    files, ...) to offer them by name, and formats the answer. For a bound route, which takes
    the request alone and answers a Response (or renders its error as one), that is all wasted:
    it cost about as much as trail's own Python on `/hit`. Robyn's record of the route
    (method, path, parameters) stays as it registered it; only the function it calls changes.
    """
    last = app.router.routes[-1]
    info = last.function
    if getattr(info.handler, "__wrapped__", None) is not fn:  # another Robyn version
        raise RuntimeError(f"Robyn did not record {fn.__name__} as its last route")
    direct = FunctionInfo(fn, is_async, info.number_of_params, info.args, info.kwargs)
    app.router.routes[-1] = last._replace(function=direct)
