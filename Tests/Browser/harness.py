"""Helpers for the browser tests: a broker process per test, headless Chromium sessions, REST calls."""

import json
import os
import queue
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# The page under test is the one compiled into the broker; BROWSER_WEB_ROOT=Sources/HTTPServer/Public serves the
# working copy instead (serve --web-root), for editing the page without rebuilding.
WEB_ROOT = os.environ.get("BROWSER_WEB_ROOT")
BROKER_BIN = os.environ.get("BROKER_BIN", os.path.join(ROOT, ".build", "release", "broker-cli"))
SCREENSHOTS_DIR = os.environ.get("SCREENSHOTS_DIR")
CHROME_BIN = os.environ.get("CHROME_BIN", "/usr/bin/chromium")
CHROMEDRIVER_BIN = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")
WAIT = 15


class Broker:
    """One broker-cli process on 127.0.0.1, its output drained by a thread."""

    def __init__(self, store=None, port=0, extra=()):
        self.store = store
        self.port = port
        self.extra = list(extra)
        self.proc = None
        self.lines = []

    def start(self, timeout=20):
        args = [BROKER_BIN, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "notice"]
        if WEB_ROOT:
            args += ["--web-root", WEB_ROOT]
        if self.store:
            args += ["--store", self.store]
        args += self.extra
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     errors="replace")
        found = queue.Queue()
        proc = self.proc

        def drain():
            for line in proc.stdout:
                self.lines.append(line.rstrip("\n"))
                m = re.search(r"\bport=(\d+)", line)
                if m:
                    found.put(int(m.group(1)))
            found.put(None)

        self.reader = threading.Thread(target=drain, daemon=True)
        self.reader.start()
        try:
            port = found.get(timeout=timeout)
        except queue.Empty:
            port = None
        if not port:
            self.stop()
            raise RuntimeError("broker did not start:\n" + "\n".join(self.lines[-20:]))
        self.port = port
        return self

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc:
            self.reader.join(timeout=5)
            if not self.reader.is_alive():
                self.proc.stdout.close()
        self.proc = None

    # REST
    def request(self, method, path, body=None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                return res.status, json.loads(res.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def publish(self, topic, data, event=None, **extra):
        body = {"topic": topic, "data": data}
        if event:
            body["event"] = event
        body.update(extra)
        status, answer = self.request("POST", "/api/events/publish", body)
        assert status == 200, (status, answer)
        return answer

    def chat(self, room, text, name="rest-bot"):
        return self.publish(room, {"room": room, "text": text, "name": name, "userId": "rest-bot",
                                   "sentAt": int(time.time() * 1000)}, event="chat")

    def chat_in_background(self, room, texts, interval=0.05):
        """Publishes `texts` to `room` one by one, `interval` seconds apart, on a thread; returns the started thread."""
        def publish():
            for text in texts:
                self.chat(room, text)
                time.sleep(interval)

        thread = threading.Thread(target=publish)
        thread.start()
        return thread

    def health(self):
        return self.request("GET", "/api/health")[1]


def new_driver(eventsource=True):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROME_BIN
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1280,800", "--lang=en-US"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER_BIN), options=opts)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(20)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
    if not eventsource:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                               {"source": "delete window.EventSource; window.__noEventSource = true;"})
    return driver


def tid(name):
    return (By.CSS_SELECTOR, '[data-testid="%s"]' % name)


def wait(driver, predicate, timeout=WAIT, message=""):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(predicate, message)


def texts(driver, testid, within=None):
    """The text of every element with that data-testid (read in the page: hidden ones too)."""
    return driver.execute_script(
        "var root = arguments[1] ? document.querySelector('[data-testid=\"' + arguments[1] + '\"]') : document;"
        "return Array.from(root.querySelectorAll('[data-testid=\"' + arguments[0] + '\"]'))"
        ".map(function (e) { return e.textContent; });", testid, within)


def state(driver):
    return driver.execute_script(
        "var q = function (t) { var e = document.querySelector('[data-testid=\"' + t + '\"]'); return e; };"
        "return {state: q('connection-state').getAttribute('data-state'), transport: q('transport').textContent,"
        " lastEventId: q('last-event-id').textContent};")


def screenshot(driver, name):
    if not SCREENSHOTS_DIR:
        return
    os.makedirs(SCREENSHOTS_DIR, exist_ok=True)
    driver.save_screenshot(os.path.join(SCREENSHOTS_DIR, name))
