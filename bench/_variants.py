"""`python -m bench._variants NAMES` runs `python -m tzurot` with bench-only changes applied, to
measure what a product change would gain before anyone makes it. The bot never uses this.

NAMES is a comma-separated list of:
- `gc-freeze`: `gc.collect(); gc.freeze()` once `Application.start()` is done, so the cyclic
  garbage collector no longer walks the ~1M objects of the start-up (litellm's above all);
- `uvloop`: uvloop's event loop instead of asyncio's;
- `orjson`: orjson for SAQ's job (de)serialisation (`RedisQueue(dump=, load=)`).

uvloop and orjson are not project dependencies: BENCH_VARIANT_SITE may name a scratch
virtualenv's site-packages to import them from (it is appended to sys.path, after the project's).
"""

from __future__ import annotations

import gc
import os
import runpy
import sys
from typing import Any

VARIANTS = ("gc-freeze", "uvloop", "orjson")


def apply(names: list[str]) -> None:
    site = os.environ.get("BENCH_VARIANT_SITE")
    if site:
        sys.path.append(site)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    if "gc-freeze" in names:
        from tzurot.app import Application

        start = Application.start

        async def start_then_freeze(self: Application) -> None:
            await start(self)
            gc.collect()
            gc.freeze()

        Application.start = start_then_freeze  # type: ignore[method-assign]
    if "uvloop" in names:
        import asyncio

        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if "orjson" in names:
        import orjson

        from tzurot.jobs.saq_queue import TzurotQueue

        init = TzurotQueue.__init__

        def init_with_orjson(self: TzurotQueue, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("dump", orjson.dumps)
            kwargs.setdefault("load", orjson.loads)
            init(self, *args, **kwargs)

        TzurotQueue.__init__ = init_with_orjson  # type: ignore[method-assign]


def main() -> None:
    names = [n for n in (sys.argv[1] if len(sys.argv) > 1 else "").split(",") if n]
    apply(names)
    sys.argv = ["tzurot", *sys.argv[2:]]
    runpy.run_module("tzurot", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
