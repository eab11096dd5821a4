"""Browser tests of the chat page and broker.js: headless Chromium against a real broker-cli per test.

Run with scripts/browser-tests.sh (BROKER_BIN picks the broker; SCREENSHOTS_DIR=docs/screenshots saves screenshots).
"""

import os
import sys
import tempfile
import time
import unittest

from selenium.webdriver.common.keys import Keys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Broker, new_driver, screenshot, state, texts, tid, wait  # noqa: E402


class BrowserTestCase(unittest.TestCase):
    store = None

    def setUp(self):
        self.broker = self.start_broker()

    def start_broker(self, store=None, port=0, extra=()):
        broker = Broker(store=store, port=port, extra=extra).start()
        self.addCleanup(broker.stop)
        return broker

    def driver(self, eventsource=True):
        d = new_driver(eventsource=eventsource)
        self.addCleanup(d.quit)
        return d

    def open_lobby(self, d, name=None):
        d.get(self.broker.url + "/")
        wait(d, lambda d: d.find_element(*tid("join-form")).is_displayed())
        if name:
            box = d.find_element(*tid("name-input"))
            box.clear()
            box.send_keys(name)

    def join(self, d, name, room):
        """Enter a room through the join form, then wait until it is live."""
        self.open_lobby(d, name)
        box = d.find_element(*tid("room-input"))
        box.clear()
        box.send_keys(room)
        d.find_element(*tid("join-button")).click()
        self.wait_room_live(d, room)

    def wait_room_live(self, d, room, timeout=15):
        wait(d, lambda d: d.find_element(*tid("room-title")).text == room, timeout, "room view")
        wait(d, lambda d: state(d)["state"] == "open", timeout, "connection open")
        wait(d, lambda d: d.execute_script(
            "return document.querySelectorAll('[data-testid=\"member\"].me').length") == 1, timeout, "in presence")

    def say(self, d, text):
        box = d.find_element(*tid("composer-input"))
        box.send_keys(text)
        box.send_keys(Keys.ENTER)

    def messages(self, d):
        return texts(d, "message-text")

    def wait_messages(self, d, expected, timeout=15):
        """Wait until every expected text is shown; return the list shown then."""
        wait(d, lambda d: all(t in self.messages(d) for t in expected), timeout,
             "messages %r, shown: %r" % (expected, self.messages(d)))
        return self.messages(d)

    def members(self, d):
        return sorted(texts(d, "member-name"))

    # ------------------------------------------------------------------------------------------------------------
    def test_two_sessions_chat_presence_and_typing(self):
        history = ["Morning all! Standup moved to 10:30.", "Reminder: the design review is on Thursday."]
        for t in history:
            self.broker.chat("general", t, name="carol")
        alice, bob = self.driver(), self.driver()
        self.join(alice, "alice", "general")
        self.assertEqual(self.wait_messages(alice, history), history)  # the room's history on entry
        self.join(bob, "bob", "general")
        for d in (alice, bob):
            wait(d, lambda d: self.members(d) == ["alice", "bob"], message="both present: %r" % self.members(d))

        conversation = [(alice, "Hi Bob! The release is at 3 pm."), (bob, "Great, I'll prepare the notes."),
                        (bob, "Do we still need the migration guide?"), (alice, "Yes, one page is enough.")]
        for d, text in conversation:
            self.say(d, text)
            self.wait_messages(alice if d is bob else bob, [text])
        expected = history + [t for _, t in conversation]
        self.wait_messages(alice, expected)
        # Each message once, in the same order on both sides.
        self.assertEqual(self.messages(alice), expected)
        self.assertEqual(self.messages(bob), expected)

        # Bob types: Alice sees it, then it disappears about 3 s later.
        bob.find_element(*tid("composer-input")).send_keys("Also, the changelog")
        wait(alice, lambda d: d.find_element(*tid("typing-indicator")).text == "bob is typing…",
             message="typing indicator")
        self.assertEqual(bob.find_element(*tid("typing-indicator")).text, "")
        screenshot(alice, "chat.png")
        wait(alice, lambda d: d.find_element(*tid("typing-indicator")).text == "", 8, "typing indicator hides")

        # Bob leaves: Alice's member list follows.
        bob.get(self.broker.url + "/#/")
        wait(alice, lambda d: self.members(d) == ["alice"], message="bob left")

    def test_reload_resumes_without_loss_or_duplicates(self):
        d = self.driver()
        self.join(d, "carol", "reload")
        before = ["before %d" % i for i in range(3)]
        for t in before:
            self.broker.chat("reload", t)
        self.wait_messages(d, before)

        during = ["during %d" % i for i in range(12)]

        publisher = self.broker.chat_in_background("reload", during)
        d.refresh()
        publisher.join(timeout=20)
        self.wait_room_live(d, "reload")
        after = ["after %d" % i for i in range(3)]
        for t in after:
            self.broker.chat("reload", t)
        shown = self.wait_messages(d, before + during + after)
        time.sleep(0.5)  # anything duplicated would have arrived by now
        shown = self.messages(d)
        self.assertEqual(shown, before + during + after)

    def test_broker_restart_resumes(self):
        self.restart_scenario(eventsource=True)

    def test_broker_restart_resumes_over_websocket(self):
        self.restart_scenario(eventsource=False)

    def restart_scenario(self, eventsource):
        self.broker.stop()
        db = os.path.join(tempfile.mkdtemp(prefix="eb-browser-"), "history.db")
        self.broker = self.start_broker(store="sqlite:" + db)
        port = self.broker.port
        d = self.driver(eventsource=eventsource)
        self.join(d, "dave", "durable")
        self.assertEqual(state(d)["transport"], "SSE" if eventsource else "WebSocket")
        before = ["before restart %d" % i for i in range(3)]
        for t in before:
            self.broker.chat("durable", t)
        self.wait_messages(d, before)

        self.broker.stop()
        wait(d, lambda d: state(d)["state"] in ("reconnecting", "offline"), 15, "page notices the restart")
        # Written while the broker is down: shown as pending, queued, sent once when it is back.
        self.say(d, "written offline")
        wait(d, lambda d: texts(d, "message-pending") and "written offline" in texts(d, "message-pending")[0],
             message="pending message")
        wait(d, lambda d: d.find_element(*tid("queued")).text == "1 queued", message="queued count")
        self.assertTrue(d.find_element(*tid("connection-banner")).is_displayed())
        if eventsource:
            screenshot(d, "reconnecting.png")
        self.broker = self.start_broker(store="sqlite:" + db, port=port)
        after = ["after restart %d" % i for i in range(3)]
        for t in after:
            self.broker.chat("durable", t)
        wait(d, lambda d: state(d)["state"] == "open", 20, "reconnected")
        self.wait_messages(d, before + after + ["written offline"], 20)
        wait(d, lambda d: not texts(d, "message-pending"), message="nothing pending")
        self.say(d, "still here")
        self.wait_messages(d, ["still here"])
        time.sleep(0.5)
        shown = self.messages(d)
        self.assertEqual(sorted(shown), sorted(before + after + ["written offline", "still here"]), shown)
        self.assertEqual(shown[:3], before)
        self.assertEqual(shown[-1], "still here")
        self.assertFalse(d.find_element(*tid("connection-banner")).is_displayed())
        self.assertEqual(state(d)["transport"], "SSE" if eventsource else "WebSocket")

    def test_websocket_fallback_without_eventsource(self):
        d = self.driver(eventsource=False)
        self.join(d, "erin", "fallback")
        self.assertTrue(d.execute_script("return window.__noEventSource === true && typeof EventSource === 'undefined'"))
        self.assertEqual(state(d)["transport"], "WebSocket")
        health = self.broker.health()
        self.assertEqual((health["connections"]["ws"], health["connections"]["sse"]), (1, 0), health)
        self.broker.chat("fallback", "over REST")
        self.say(d, "over the page")
        self.assertEqual(self.wait_messages(d, ["over REST", "over the page"]), ["over REST", "over the page"])
        member = d.find_element(*tid("member"))
        self.assertEqual(member.get_attribute("data-transport"), "ws")
        screenshot(d, "websocket-fallback.png")

        # Changing rooms on the WebSocket: unsubscribe, subscribe, the new room's history, still one connection.
        self.broker.chat("fallback-2", "history of the second room")
        d.find_element(*tid("leave-button")).click()
        wait(d, lambda d: self.lobby(d).get("fallback") == 0, message="left the room")
        d.find_element("css selector", '[data-testid="lobby-row"][data-room="fallback-2"]').click()
        self.wait_room_live(d, "fallback-2")
        self.assertEqual(self.wait_messages(d, ["history of the second room"]), ["history of the second room"])
        health = self.broker.health()
        self.assertEqual((health["connections"]["ws"], health["connections"]["sse"]), (1, 0), health)

    def test_websocket_fallback_when_eventsource_keeps_failing(self):
        # EventSource exists but never gets a stream (every URL answers 404): after a few failures the client
        # switches to the WebSocket.
        d = self.driver()
        d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
            (function () {
              var Native = window.EventSource;
              window.__eventSources = 0;
              window.EventSource = function (url, init) {
                window.__eventSources++;
                return new Native(String(url).replace('/api/events', '/api/no-such-stream'), init);
              };
              window.EventSource.prototype = Native.prototype;
            })();"""})
        self.join(d, "olga", "flaky")
        self.assertEqual(state(d)["transport"], "WebSocket")
        self.assertGreaterEqual(d.execute_script("return window.__eventSources"), 3)
        health = self.broker.health()
        self.assertEqual((health["connections"]["ws"], health["connections"]["sse"]), (1, 0), health)
        self.say(d, "sent after the fallback")
        self.assertEqual(self.wait_messages(d, ["sent after the fallback"]), ["sent after the fallback"])

    def test_publish_whose_answer_is_lost_is_retried_without_duplicate(self):
        # The first publish reaches the broker but its answer is lost (the page sees a network error): the retry
        # carries the same Idempotency-Key, so the message is stored and shown once.
        d = self.driver()
        d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
            (function () {
              var realFetch = window.fetch.bind(window);
              window.__publishKeys = [];
              window.fetch = function (url, init) {
                if (String(url).indexOf('/api/events/publish') >= 0 && init && init.body &&
                    init.body.indexOf('lost answer') >= 0) {
                  window.__publishKeys.push(init.headers['Idempotency-Key']);
                  if (window.__publishKeys.length === 1) {
                    return realFetch(url, init).then(function () { throw new TypeError('Failed to fetch'); });
                  }
                }
                return realFetch(url, init);
              };
            })();"""})
        self.join(d, "quinn", "retry")
        self.say(d, "lost answer")
        self.wait_messages(d, ["lost answer"])
        wait(d, lambda d: len(d.execute_script("return window.__publishKeys")) >= 2, message="publish retried")
        wait(d, lambda d: not d.find_element(*tid("queued")).is_displayed(), message="queue empty")
        self.assertEqual(texts(d, "message-pending"), [])
        keys = d.execute_script("return window.__publishKeys")
        self.assertEqual(len(keys), 2, keys)
        self.assertEqual(keys[0], keys[1])
        time.sleep(0.5)
        self.assertEqual(self.messages(d), ["lost answer"])
        status, history = self.broker.request("GET", "/api/events/history?topic=retry&after=0")
        self.assertEqual([e["data"]["text"] for e in history["events"]], ["lost answer"])

    def test_offline_page_queues_messages_and_sends_them_when_back(self):
        d = self.driver()
        self.join(d, "rita", "offline")
        self.broker.chat("offline", "before going offline")
        self.wait_messages(d, ["before going offline"])
        d.execute_cdp_cmd("Network.enable", {})
        d.execute_cdp_cmd("Network.emulateNetworkConditions",
                          {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        wait(d, lambda d: state(d)["state"] == "offline", message="offline state")
        self.say(d, "written without network")
        wait(d, lambda d: d.find_element(*tid("queued")).text == "1 queued", message="queued")
        self.broker.chat("offline", "published while the page is offline")
        d.execute_cdp_cmd("Network.emulateNetworkConditions",
                          {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        wait(d, lambda d: state(d)["state"] == "open", 20, "back online")
        self.wait_messages(d, ["written without network", "published while the page is offline"], 20)
        wait(d, lambda d: not d.find_element(*tid("queued")).is_displayed(), message="queue empty")
        time.sleep(0.5)
        shown = self.messages(d)
        self.assertEqual(sorted(shown), sorted(["before going offline", "written without network",
                                                "published while the page is offline"]), shown)

    def test_keyboard_only(self):
        self.broker.chat("kbd-history", "typed elsewhere")
        d = self.driver()
        d.get(self.broker.url + "/")
        active = lambda: d.switch_to.active_element.get_attribute("data-testid")
        wait(d, lambda d: active() == "name-input", message="the name field has the focus")
        d.switch_to.active_element.send_keys("uma")
        d.switch_to.active_element.send_keys(Keys.TAB)
        self.assertEqual(active(), "room-input")
        d.switch_to.active_element.send_keys(Keys.CONTROL, "a")
        d.switch_to.active_element.send_keys("keyboard" + Keys.ENTER)
        self.wait_room_live(d, "keyboard")
        self.assertEqual(active(), "composer-input")
        d.switch_to.active_element.send_keys("first line" + Keys.SHIFT + Keys.ENTER + Keys.SHIFT + "second line")
        d.switch_to.active_element.send_keys(Keys.ENTER)
        self.assertEqual(self.wait_messages(d, ["first line\nsecond line"]), ["first line\nsecond line"])
        # Back to the lobby with the keyboard, then into a room from its list.
        d.find_element(*tid("leave-button")).send_keys(Keys.ENTER)
        wait(d, lambda d: d.find_element(*tid("lobby")).is_displayed(), message="lobby")
        row = wait(d, lambda d: d.find_elements("css selector", '[data-testid="lobby-row"][data-room="kbd-history"]'),
                   message="room listed")[0]
        row.send_keys(Keys.ENTER)
        self.wait_room_live(d, "kbd-history")
        self.assertEqual(self.wait_messages(d, ["typed elsewhere"]), ["typed elsewhere"])

    def test_gap_in_history_is_reported(self):
        # History keeps 3 events per topic: a page that was away for 6 learns it missed some, and shows the rest.
        self.broker.stop()
        self.broker = self.start_broker(extra=["--history-size", "3"])
        d = self.driver()
        self.join(d, "victor", "short")
        self.broker.chat("short", "seen before")
        self.wait_messages(d, ["seen before"])
        d.execute_cdp_cmd("Network.enable", {})
        d.execute_cdp_cmd("Network.emulateNetworkConditions",
                          {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        wait(d, lambda d: state(d)["state"] == "offline", message="offline")
        missed = ["missed %d" % i for i in range(6)]
        for t in missed:
            self.broker.chat("short", t)
        d.execute_cdp_cmd("Network.emulateNetworkConditions",
                          {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        wait(d, lambda d: state(d)["state"] == "open", 20, "back online")
        wait(d, lambda d: any(n.get_attribute("data-type") == "gap"
                              for n in d.find_elements(*tid("notification"))), message="gap notification")
        self.assertEqual(self.wait_messages(d, missed[-3:]), ["seen before"] + missed[-3:])

    def test_markup_in_messages_renders_as_text(self):
        d = self.driver()
        self.join(d, "mallory", "xss")
        evil = ['<script>window.__xss = 1</script>', '<img src=x onerror="window.__xss = 2">',
                '<b onmouseover="window.__xss = 3">bold?</b> & &amp; "quotes"']
        self.say(d, evil[0])
        self.say(d, evil[1])
        self.broker.chat("xss", evil[2], name='<img src=x onerror="window.__xss = 4">')
        shown = self.wait_messages(d, evil)
        self.assertEqual(shown, evil)
        for t in evil[:2]:
            self.assertIn(t, d.find_element(*tid("message-list")).text)
        self.assertIn('<img src=x onerror="window.__xss = 4">', texts(d, "message-author"))
        self.assertEqual(d.execute_script(
            "return document.querySelectorAll('[data-testid=\"message-list\"] img, "
            "[data-testid=\"message-list\"] script, [data-testid=\"message-list\"] b').length"), 0)
        time.sleep(0.3)
        self.assertIsNone(d.execute_script("return window.__xss === undefined ? null : window.__xss"))

    def test_two_tabs_share_one_connection(self):
        d = self.driver()
        self.join(d, "frank", "shared")
        first = d.current_window_handle
        d.switch_to.new_window("tab")
        second = d.current_window_handle
        d.get(self.broker.url + "/#/room/shared")
        self.wait_room_live(d, "shared")
        health = self.broker.health()
        self.assertEqual(health["connections"]["sse"] + health["connections"]["ws"], 1, health)

        self.broker.chat("shared", "to both tabs")
        self.wait_messages(d, ["to both tabs"])
        self.say(d, "from the second tab")
        d.switch_to.window(first)
        self.assertEqual(self.wait_messages(d, ["to both tabs", "from the second tab"]),
                         ["to both tabs", "from the second tab"])
        health = self.broker.health()
        self.assertEqual(health["connections"]["sse"] + health["connections"]["ws"], 1, health)

        # The leader tab closes while messages keep coming: the other one takes over and resumes from the last id,
        # losing none and showing none twice.
        during = ["during the handover %d" % i for i in range(10)]

        publisher = self.broker.chat_in_background("shared", during)
        time.sleep(0.1)
        d.close()
        d.switch_to.window(second)
        publisher.join(timeout=20)
        self.broker.chat("shared", "after the first tab closed")
        expected = ["to both tabs", "from the second tab"] + during + ["after the first tab closed"]
        self.wait_messages(d, expected, 20)
        time.sleep(0.5)
        self.assertEqual(self.messages(d), expected)
        wait(d, lambda d: state(d)["state"] == "open")
        wait(d, lambda d: sum(self.broker.health()["connections"].values()) == 1, 10, "one connection")

    def test_ten_tabs_use_one_connection(self):
        # Without sharing, the seventh tab would wait forever for one of the six connections per origin.
        d = self.driver()
        self.join(d, "sam", "crowded")
        handles = [d.current_window_handle]
        for i in range(9):
            d.switch_to.new_window("tab")
            handles.append(d.current_window_handle)
            d.get(self.broker.url + ("/#/room/crowded" if i % 2 else "/#/"))
        wait(d, lambda d: state(d)["state"] == "open", 20, "last tab live")
        health = self.broker.health()
        self.assertEqual(health["connections"]["sse"] + health["connections"]["ws"], 1, health)
        self.broker.chat("crowded", "hello, ten tabs")
        for h in handles[0::2]:  # the tabs in the room (the others show the lobby)
            d.switch_to.window(h)
            self.assertEqual(self.wait_messages(d, ["hello, ten tabs"]), ["hello, ten tabs"])
        d.switch_to.window(handles[1])
        wait(d, lambda d: d.execute_script(
            "var r = document.querySelector('[data-testid=\"lobby-row\"][data-room=\"crowded\"]');"
            "return r && r.querySelector('[data-testid=\"lobby-count\"]').getAttribute('data-count');") == "1",
            message="a lobby tab counts the one shared member")

    def test_tabs_in_different_rooms_share_one_connection(self):
        self.broker.chat("alpha", "alpha old")
        self.broker.chat("beta", "beta old")
        d = self.driver()
        self.join(d, "paul", "alpha")
        first = d.current_window_handle
        self.assertEqual(self.wait_messages(d, ["alpha old"]), ["alpha old"])
        d.switch_to.new_window("tab")
        d.get(self.broker.url + "/#/room/beta")
        self.wait_room_live(d, "beta")
        # The new room's history arrives in the second tab, and only there.
        self.assertEqual(self.wait_messages(d, ["beta old"]), ["beta old"])
        health = self.broker.health()
        self.assertEqual(health["connections"]["sse"] + health["connections"]["ws"], 1, health)
        self.broker.chat("alpha", "alpha new")
        self.broker.chat("beta", "beta new")
        self.assertEqual(self.wait_messages(d, ["beta old", "beta new"]), ["beta old", "beta new"])
        d.switch_to.window(first)
        self.assertEqual(self.wait_messages(d, ["alpha old", "alpha new"]), ["alpha old", "alpha new"])
        time.sleep(0.3)
        self.assertEqual(self.messages(d), ["alpha old", "alpha new"])

    def test_lobby_lists_rooms_and_updates_live(self):
        self.broker.chat("history-only", "an old message")
        self.broker.chat("team/releases", "v2.3 is out", name="bot")
        self.broker.chat("team/releases", "v2.4 is planned for March", name="bot")
        watcher = self.driver()
        self.open_lobby(watcher, "grace")
        wait(watcher, lambda d: self.lobby(d).get("history-only") == 0, message="room with history listed")

        visitor = self.driver()
        self.join(visitor, "heidi", "design")
        wait(watcher, lambda d: self.lobby(d).get("design") == 1, message="design: 1 member")
        other = self.driver()
        self.join(other, "ivan", "design")
        wait(watcher, lambda d: self.lobby(d).get("design") == 2, message="design: 2 members")
        self.assertNotIn("$presence/design", self.lobby(watcher))
        self.assertFalse(any(t.startswith("$") for t in self.lobby(watcher)))
        # The most populated room comes first.
        self.assertEqual(texts(watcher, "lobby-room")[0], "design")
        screenshot(watcher, "lobby.png")

        other.get(self.broker.url + "/#/")
        wait(watcher, lambda d: self.lobby(d).get("design") == 1, message="design: back to 1")

        # Clicking a row enters the room, with its history.
        watcher.find_element("css selector", '[data-testid="lobby-row"][data-room="history-only"]').click()
        self.wait_room_live(watcher, "history-only")
        self.assertEqual(self.wait_messages(watcher, ["an old message"]), ["an old message"])

    def lobby(self, d):
        return d.execute_script(
            "var out = {}; document.querySelectorAll('[data-testid=\"lobby-row\"]').forEach(function (r) {"
            " out[r.getAttribute('data-room')] = parseInt(r.querySelector('[data-testid=\"lobby-count\"]').textContent, 10); });"
            "return out;")

    def test_broadcast_shows_a_notification(self):
        d = self.driver()
        self.join(d, "judy", "ops")
        self.broker.chat("ops", "Deploying the new search index now.", name="kim")
        self.wait_messages(d, ["Deploying the new search index now."])
        status, answer = self.broker.request("POST", "/api/messages/broadcast",
                                             {"data": {"message": "Maintenance at 22:00 UTC: 5 minutes of downtime."},
                                              "event": "announcement"})
        self.assertEqual(status, 200, answer)
        wait(d, lambda d: "Maintenance at 22:00 UTC: 5 minutes of downtime." in texts(d, "toast-text"),
             message="toast")
        self.assertIn("Maintenance at 22:00 UTC: 5 minutes of downtime.", texts(d, "notification-text"))
        self.assertEqual(self.messages(d), ["Deploying the new search index now."])
        time.sleep(0.4)  # the toast's entrance animation
        screenshot(d, "notification.png")
        # A broadcast without an event type, with plain text data.
        self.broker.request("POST", "/api/messages/broadcast", {"data": "<i>plain</i> text"})
        wait(d, lambda d: "<i>plain</i> text" in texts(d, "notification-text"), message="plain broadcast")


if __name__ == "__main__":
    unittest.main()
