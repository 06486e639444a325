"""Measure the live page's rendering in headless Chromium: frame rate and main-thread busy time.

Frame rate: requestAnimationFrame callbacks counted over a window. Busy: the change of CDP
`Performance.getMetrics` `TaskDuration` (seconds the renderer's main thread spent in tasks) over
the same wall-clock window. Used by tests/e2e/test_page_rendering.py; also runnable by hand
against any server to compare revisions (figures in the README come from it):

    python -m tests.e2e.pageperf http://127.0.0.1:8080 --symbols 100 --seconds 5
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from typing import Any

COUNT_FRAMES = """(ms) => new Promise((resolve) => {
  let frames = 0, first = null;
  setTimeout(() => resolve(0), ms * 3);  // a page that renders no frame at all: 0 fps, not a hang
  function step(t) {
    if (first === null) first = t;
    else frames += 1;
    if (t - first < ms) requestAnimationFrame(step);
    else resolve(frames * 1000 / (t - first));
  }
  requestAnimationFrame(step);
})"""


# CDP metric -> key in the result: each is the share of wall time spent on it (0..1).
PARTS = {
    "TaskDuration": "busy",
    "ScriptDuration": "script",
    "RecalcStyleDuration": "style",
    "LayoutDuration": "layout",
}


def symbols(count: int) -> list[str]:
    """`count` made-up symbols: S000, S001, ..."""
    return [f"S{n:03d}" for n in range(count)]


def measure(page: Any, seconds: float) -> dict[str, float]:
    """{fps, busy (0..1), ticks_per_s} of `page` over `seconds`, measured while it streams."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")

    def durations() -> dict[str, float]:
        metrics = cdp.send("Performance.getMetrics")["metrics"]
        return {m["name"]: float(m["value"]) for m in metrics if m["name"] in PARTS}

    ticks0 = page.evaluate("window.tickerClient.ticksReceived")
    before, wall0 = durations(), time.monotonic()
    fps = float(page.evaluate(COUNT_FRAMES, seconds * 1000))
    after, wall1 = durations(), time.monotonic()
    ticks1 = page.evaluate("window.tickerClient.ticksReceived")
    cdp.detach()
    wall = wall1 - wall0
    share = {PARTS[name]: round((after[name] - before[name]) / wall, 3) for name in PARTS}
    return {"fps": round(fps, 1), **share, "ticks_per_s": round((ticks1 - ticks0) / wall, 1)}


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    url = f"{args.url}/?symbols={','.join(symbols(args.symbols))}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(url)
        page.wait_for_function("window.tickerClient.ticksReceived > 500", timeout=30_000)
        print(json.dumps({"symbols": args.symbols, **measure(page, args.seconds)}))
        browser.close()


if __name__ == "__main__":
    main()
