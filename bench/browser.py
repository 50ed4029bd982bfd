"""What showing an answer in the page costs its generation, against the API, in one run:

- the app is started once per update interval (`QUIPU_UI__STREAM_INTERVAL_S`), and the same
  plain-chat question is asked in turn through the page in headless Chromium and through the API
  with gradio_client;
- each answer's generation rate is the model's own (the "tokens/s" line under the answer, and
  `timing.tokens_per_s` in the API's last message), so the figure is how fast the model wrote
  while a browser redrew the answer, not how fast the screen changed;
- the ratio page/API, taken within each round, says what the page's updates cost on this
  machine. On two cores every update the browser draws is CPU time that llama.cpp's threads
  would have used, which is why the default interval grows as CPUs get fewer.

    python launch.py bench browser [--intervals 0.05,0.15,0.25] [--rounds 3] [--max-tokens 300]

Needs Chromium at /usr/bin/chromium (`python launch.py test` installs it).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import privacy  # noqa: E402

privacy.apply()

QUESTION = "Write a long story about a lighthouse keeper and a storm."
RATE = re.compile(r"(\d+) tokens · (\d+) tokens/s")


# The end of an answer is looked for by the page itself, every half second: reading the answer
# from here through Playwright five times a second made the model write 4% slower, CPU time that
# a person watching the page does not take.
_RATE_SHOWN = """([selector, pattern]) => {
    const bubbles = document.querySelectorAll(selector);
    const last = bubbles[bubbles.length - 1];
    const found = last ? new RegExp(pattern).exec(last.innerText) : null;
    return found ? found[2] : null;
}"""


def through_page(page, timeout_s: float = 120.0) -> float:
    """The model's rate for one answer asked in the page (a new chat, documents off)."""
    from tests.ui.test_browser import BOT_BUBBLES

    page.locator("#quipu-new-chat").click()
    page.locator("#quipu-question textarea").fill(QUESTION)
    page.locator("#quipu-send").click()
    rate = page.wait_for_function(
        _RATE_SHOWN, arg=[BOT_BUBBLES, RATE.pattern], polling=500, timeout=timeout_s * 1000
    )
    return float(rate.json_value())


def through_api(client) -> float:
    """The model's rate for the same answer asked through the API (no page drawing it)."""
    job = client.submit(QUESTION, False, "", api_name="/chat")
    while not job.done():
        time.sleep(0.05)
    return float(job.outputs()[-1]["timing"]["tokens_per_s"])


def measure(interval: float, rounds: int, max_tokens: int) -> tuple[list[float], list[float]]:
    """(page rates, API rates), one of each per round, in an order alternating round by round."""
    from gradio_client import Client
    from playwright.sync_api import sync_playwright

    from tests.conftest import start_app
    from tests.ui.test_browser import CHROMIUM, CHROMIUM_ARGS

    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        QUIPU_MODEL__TEMPERATURE="0",
        QUIPU_MODEL__MAX_TOKENS=str(max_tokens),
        QUIPU_UI__STREAM_INTERVAL_S=str(interval),
    )
    page_rates: list[float] = []
    api_rates: list[float] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_app(Path(tmp) / "data", env=env) as app,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        page.goto(app.url)
        client = Client(app.url, verbose=False)
        through_api(client)  # warm-up: the model's first answer
        for number in range(rounds):
            runs = [
                lambda: page_rates.append(through_page(page)),
                lambda: api_rates.append(through_api(client)),
            ]
            for run in runs if number % 2 == 0 else runs[::-1]:
                run()
        client.close()
        browser.close()
    return page_rates, api_rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--intervals", default="0.05,0.15,0.25")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=300)
    args = parser.parse_args()

    from app.settings import UiSettings

    default = UiSettings().stream_interval
    print(f"{os.cpu_count()} CPUs; default update interval here {default:.3f} s")
    print(f"{'interval':>9} {'page tokens/s':>14} {'API tokens/s':>13} {'page/API':>9}")
    for interval in (float(x) for x in args.intervals.split(",")):
        page, api = measure(interval, args.rounds, args.max_tokens)
        ratio = statistics.median(p / a for p, a in zip(page, api, strict=True))
        mark = "  <- default" if abs(interval - default) < 1e-9 else ""
        print(
            f"{interval:8.3f}s {statistics.median(page):14.1f} {statistics.median(api):13.1f} "
            f"{ratio:9.2f}{mark}   (page {page}, API {api})",
            flush=True,
        )


if __name__ == "__main__":
    main()
