"""The console in a real browser against a running pipeline on the real broker.

Headless Chromium from Debian's packages, driven through Debian's chromedriver by selenium (no
driver or browser download). The console serves HTTPS with a throwaway self-signed certificate
(chromium is told to accept it) and reads the watchtower's views beside the pipeline. Before a
login the page shows no data; a viewer's token shows signals as the worker emits them, the
watchtower's health and its charts drawn from the windows (uPlot, from the package), but no
controls; an operator logs in, pulls the global kill
switch with a reason, and the page shows every instrument HALTED and the audit records that
applied the switch, naming that operator.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from itertools import takewhile
from pathlib import Path

import pytest
from stubs import self_signed_cert

from tickwise.schemas.decisions import AUDIT_ADAPTER, AuditRecord
from tickwise.schemas.topics import Topics
from tickwise.streams.console.server import spawn_console
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.broker import free_port
from tickwise.streams.live.feed import publish
from tickwise.streams.live.tap import (
    consumer,
    messages,
    spawn_watch,
    spawn_worker,
    stop_process,
)
from tickwise.streams.sources import synthetic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CONFIG = """
[model]
warmup_labels = 5
[label]
horizon_s = 0.5
"""
# windows short enough for a run of a few minutes of event time to fill several
WINDOWS = "[watch.anomaly]\nwindow_s = 5.0\nhop_size_s = 15.0\nhop_step_s = 5.0\n"
OPERATOR_TOKEN = "op-" + uuid.uuid4().hex
WATCH_TOKEN = "watch-" + uuid.uuid4().hex
VIEWER_TOKEN = "view-" + uuid.uuid4().hex
WAIT_S = 60


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("Debian's chromium and chromium-driver are required (.ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--ignore-certificate-errors")  # the test's own self-signed certificate
    options.add_argument("--window-size=1400,1500")
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def test_console_shows_signals_and_an_operator_halts_trading_from_the_page(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    topics = Topics(topic_prefix)
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    config = tmp_path / "tickwise.toml"
    config.write_text(CONFIG)
    app_id = f"console-{uuid.uuid4().hex[:8]}"
    worker = spawn_worker(
        kafka_bootstrap, topic_prefix, app_id, str(config),
        str(tmp_path / "worker.log"), str(tmp_path / "checkpoints"),
    )  # fmt: skip
    watch_config = tmp_path / "watch.toml"
    watch_config.write_text(CONFIG + f'[watch]\nworker_group = "{app_id}"\n' + WINDOWS)
    watch_port = free_port()
    tower = spawn_watch(
        kafka_bootstrap, topic_prefix, str(watch_config), free_port(),
        str(tmp_path / "watch.log"), web_port=watch_port, users=f"console:viewer:{WATCH_TOKEN}",
    )  # fmt: skip
    records = list(synthetic(seed=5, count=24_000, bad_rate=0.01))
    done = threading.Event()  # ticks flow while the page is looked at, and no longer
    ticks = takewhile(lambda _: not done.is_set(), records)
    feeder = threading.Thread(
        target=publish, args=(ticks, kafka_bootstrap, topics.raw, 800.0), daemon=True
    )
    feeder.start()
    port = free_port()
    users = f"alice:operator:{OPERATOR_TOKEN},bob:viewer:{VIEWER_TOKEN}"
    tls = self_signed_cert(tmp_path)
    console = spawn_console(
        kafka_bootstrap, topic_prefix, port, users, str(config), str(tmp_path / "console.log"),
        tls=tls, watch_url=f"http://127.0.0.1:{watch_port}", watch_token=WATCH_TOKEN,
    )  # fmt: skip
    driver = None
    try:
        driver = browser()
        # the page re-renders as updates are pushed: an element found a moment ago may be gone,
        # so every read of live content goes through the wait, which retries a stale one
        wait = WebDriverWait(
            driver, WAIT_S, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException]
        )
        driver.get(f"https://127.0.0.1:{port}/")
        assert driver.execute_script("return window.isSecureContext && location.protocol") == (
            "https:"
        )
        # anonymous: the page asks for a token and shows nothing of the desk
        wait.until(lambda d: d.find_element(By.ID, "conn").text == "logged out")
        assert "not logged in" in driver.find_element(By.ID, "whoami").text
        assert (
            driver.execute_async_script("fetch('/api/state').then((r) => arguments[0](r.status))")
            == 401
        )
        assert not driver.find_elements(By.CSS_SELECTOR, "#instruments tbody tr")

        # a viewer: signals appear, pushed by the server, with their explanations; no controls
        driver.find_element(By.ID, "login-token").send_keys(VIEWER_TOKEN)
        driver.find_element(By.ID, "login-button").click()
        wait.until(lambda d: d.find_element(By.ID, "whoami").text == "bob (viewer)")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#signals tr.signal")) >= 3)
        explanation = wait.until(
            lambda d: d.find_element(By.CSS_SELECTOR, "#signals tr.signal td.expl").text
        )
        assert "pushed" in explanation
        assert driver.find_element(By.ID, "conn").text == "live"
        assert driver.find_element(By.ID, "control-fields").get_property("disabled")

        # the watchtower's health and its charts, drawn on canvases with the windows' data
        wait.until(lambda d: f"workers {app_id}" in d.find_element(By.ID, "health").text)
        points = "return Object.fromEntries(Object.entries(window.tickwiseCharts || {})" + (
            ".map(([k, c]) => [k, c.data[0].length]))"
        )
        drawn = wait.until(lambda d: (lambda n: len(n) == 5 and min(n.values()) >= 2 and n)(
            d.execute_script(points)
        ))  # fmt: skip
        assert set(drawn) == {"pnl", "position", "orders", "accuracy", "lag"}
        canvases = driver.find_elements(By.CSS_SELECTOR, "#charts div[data-chart] canvas")
        assert len(canvases) == 5 and all(c.size["width"] > 300 for c in canvases)
        orders = driver.execute_script("return tickwiseCharts.orders.data[1]")
        assert sum(orders) > 0  # the windows counted the worker's orders
        driver.save_screenshot(str(tmp_path / "charts.png"))

        # logging out blanks the page; the operator logs in
        driver.find_element(By.ID, "logout-button").click()
        wait.until(lambda d: d.find_element(By.ID, "conn").text == "logged out")
        assert not driver.find_elements(By.CSS_SELECTOR, "#signals tr.signal")
        driver.find_element(By.ID, "login-token").send_keys(OPERATOR_TOKEN)
        driver.find_element(By.ID, "login-button").click()
        wait.until(lambda d: d.find_element(By.ID, "whoami").text == "alice (operator)")
        assert not driver.find_element(By.ID, "control-fields").get_property("disabled")

        driver.find_element(By.ID, "ks-on").click()  # no reason yet: refused on the page
        assert "reason" in driver.find_element(By.ID, "control-result").text
        driver.find_element(By.ID, "reason").send_keys("browser test: desk halts trading")
        driver.find_element(By.ID, "ks-on").click()
        wait.until(lambda d: "sent" in d.find_element(By.ID, "control-result").text)

        def halted(d) -> bool:
            cells = d.find_elements(By.CSS_SELECTOR, "#instruments td[id^='risk-']")
            return len(cells) == 3 and all(c.text == "HALTED" for c in cells)

        wait.until(halted)
        rows = "#audit tr.audit-row[data-operator='alice']"
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, rows)) >= 3)
        row = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, rows).text)
        assert "kill_switch_on" in row and "browser test: desk halts trading" in row
        assert "global kill switch ON (alice)" in wait.until(
            lambda d: d.find_element(By.ID, "global-ks").text
        )
        driver.save_screenshot(str(tmp_path / "console.png"))
    finally:
        done.set()
        feeder.join(60)
        if driver is not None:
            driver.quit()
        stop_process(console)
        stop_process(tower)
        stop_process(worker)

    # the workers' audit trail itself names the authenticated operator
    c = consumer(kafka_bootstrap, [topics.audit])
    try:
        applied = set()
        for msg in messages(c, idle_timeout=5, deadline=time.monotonic() + 30):
            record = AUDIT_ADAPTER.validate_json(msg.value())
            if isinstance(record, AuditRecord):  # a summary of holds applies nothing
                applied |= {(record.instrument, a.operator) for a in record.controls_applied}
            if len(applied) >= 3:
                break
    finally:
        c.close()
    assert {operator for _, operator in applied} == {"alice"} and len(applied) == 3
    if os.environ.get("TICKWISE_KEEP_SCREENSHOT"):
        shutil.copy(tmp_path / "console.png", os.environ["TICKWISE_KEEP_SCREENSHOT"])
        shutil.copy(tmp_path / "charts.png", os.environ["TICKWISE_KEEP_SCREENSHOT"] + ".charts.png")
