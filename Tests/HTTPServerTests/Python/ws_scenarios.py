#!/usr/bin/env python3
"""Live WebSocket scenarios against a running broker, driven by WebSocketLiveTests.swift.

Usage: python3 ws_scenarios.py <scenario> <port>

Each scenario talks to the broker on 127.0.0.1:<port> with the `websockets` library (asyncio client), plus
http.client for REST and SSE. It prints ONE JSON line with what it observed (messages as received, close codes,
ids), not a verdict: the Swift test decides. On failure (a timeout, an unexpected close, a REST error) it prints
`{"error": ..., "observed": <what it saw so far>}` and exits 1. Every wait is bounded, so a scenario ends within
seconds however the server behaves.
"""

import asyncio
import http.client
import json
import signal
import sys
import threading

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

RECEIVE_TIMEOUT = 3.0
SCENARIO_TIMEOUT = 12.0
HARD_LIMIT_SECONDS = 20


class ScenarioError(Exception):
    pass


class Broker:
    def __init__(self, port):
        self.port = port
        self.ws_url = f"ws://127.0.0.1:{port}/api/ws"

    def connect(self, query="", compression=None):
        """A WebSocket to /api/ws with `query` (including its `?`); no proxy, short timeouts."""
        return connect(
            self.ws_url + query,
            compression=compression,
            proxy=None,
            open_timeout=RECEIVE_TIMEOUT,
            close_timeout=1,
        )

    def _post(self, path, body):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=RECEIVE_TIMEOUT)
        try:
            connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            text = response.read().decode("utf-8")
            if response.status != 200:
                raise ScenarioError(f"POST {path} {json.dumps(body)} answered {response.status}: {text}")
            return json.loads(text)
        finally:
            connection.close()

    async def post(self, path, body):
        """POSTs JSON and returns the JSON answer; a status other than 200 is an error."""
        return await asyncio.to_thread(self._post, path, body)

    async def publish(self, body):
        """Publishes over REST and returns the event id."""
        return (await self.post("/api/events/publish", body))["id"]


async def receive(ws, timeout=RECEIVE_TIMEOUT):
    """The next message, parsed as JSON (a text message that is not JSON is returned as {"unparsed": text})."""
    text = await asyncio.wait_for(ws.recv(), timeout)
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return {"unparsed": text if isinstance(text, str) else repr(text)}


async def receive_until(ws, done, log=None, timeout=RECEIVE_TIMEOUT):
    """Every message up to and including the first for which `done(message)` holds, appended to `log` as they come.

    A timeout is an error that names what did arrive.
    """
    messages = [] if log is None else log
    while True:
        try:
            message = await receive(ws, timeout)
        except asyncio.TimeoutError:
            raise ScenarioError(f"timed out after {timeout} s; received {json.dumps(messages)}") from None
        messages.append(message)
        if done(message):
            return messages


def of_type(kind):
    return lambda message: message.get("type") == kind


def event_with_id(event_id):
    return lambda message: message.get("type") == "event" and message.get("id") == event_id


async def close_code(ws, send=None, timeout=RECEIVE_TIMEOUT):
    """Sends `send` (a coroutine function of ws), then reads until the server closes; returns what was seen.

    `code` and `reason` are those of the server's close frame (None when the connection ended without one).
    """
    seen = []
    try:
        if send is not None:
            await send(ws)
        while True:
            seen.append(await receive(ws, timeout))
    except ConnectionClosed as closed:
        received = closed.rcvd
        return {
            "code": received.code if received else None,
            "reason": received.reason if received else None,
            "received": seen,
        }
    except asyncio.TimeoutError:
        raise ScenarioError(f"the server did not close within {timeout} s; received {json.dumps(seen)}") from None


# MARK: Scenarios


async def roundtrip(broker, observed):
    """Subscribe with a ref, publish over WS and REST, a ping message and a ping control frame."""
    async with broker.connect() as ws:
        observed["connected"] = await receive(ws)
        await ws.send(json.dumps({"type": "subscribe", "topics": ["rt/news"], "ref": 1}))
        observed["subscribe"] = await receive_until(ws, of_type("ack"))

        publish = {"type": "publish", "topic": "rt/news", "data": {"n": 1}, "event": "created", "ref": "p-1"}
        await ws.send(json.dumps(publish))
        observed["webSocketPublish"] = await receive_until(ws, of_type("event"))

        observed["restId"] = await broker.publish({"topic": "rt/news", "data": "hello"})
        observed["restPublish"] = await receive_until(ws, of_type("event"))

        await ws.send(json.dumps({"type": "ping", "ref": {"k": [1, "x"]}}))
        observed["ping"] = await receive_until(ws, of_type("pong"))

        pong = await ws.ping(b"are you there")
        latency = await asyncio.wait_for(pong, RECEIVE_TIMEOUT)
        observed["controlPingAnswered"] = latency >= 0


async def resume(broker, observed):
    """Resume by URL and by subscribe message, and from an id the broker never issued."""
    topic = "resume/t"
    ids = [await broker.publish({"topic": topic, "data": n}) for n in range(1, 6)]
    observed["published"] = ids
    async with broker.connect(f"?topic={topic}&lastEventId={ids[1]}") as by_url, broker.connect() as by_message:
        observed["byURL"] = await receive_until(
            by_url, lambda m: m.get("type") == "event" and m.get("id") == ids[4])

        observed["byMessage"] = [await receive(by_message)]
        subscribe = {"type": "subscribe", "topics": [topic], "lastEventId": ids[3], "ref": "r"}
        await by_message.send(json.dumps(subscribe))
        await receive_until(by_message, of_type("ack"), log=observed["byMessage"])

        # A live event after the replays: whatever else either connection would get comes before it.
        live = await broker.publish({"topic": topic, "data": 6})
        observed["live"] = live
        await receive_until(by_url, event_with_id(live), log=observed["byURL"])
        await receive_until(by_message, event_with_id(live), log=observed["byMessage"])

    unknown = str(int(live) + 1_000_000)
    observed["unknownID"] = unknown
    async with broker.connect(f"?topic={topic}&lastEventId={unknown}") as ws:
        observed["fromUnknownID"] = await receive_until(ws, event_with_id(live))


def read_sse(port, topic, count, connected, done, results):
    """In a thread: reads `/api/events?topic=` frames until `count` events with an id arrived."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=RECEIVE_TIMEOUT * 2)
        connection.request("GET", f"/api/events?topic={topic}", headers={"Accept": "text/event-stream"})
        response = connection.getresponse()
        if response.status != 200:
            raise ScenarioError(f"GET /api/events answered {response.status}")
        frame = {}
        while len(results) < count:
            line = response.readline()
            if not line:
                raise ScenarioError(f"the SSE stream ended after {len(results)} events")
            line = line.decode("utf-8").rstrip("\n")
            if line == "":
                if frame.get("event") == "connected":
                    connected()
                elif "id" in frame:
                    results.append(frame)
                frame = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                frame[name] = frame[name] + "\n" + value if name == "data" and name in frame else value
        connection.close()
        done(None)
    except Exception as error:  # noqa: BLE001 - handed to the scenario
        done(error)


async def mixed(broker, observed):
    """An SSE reader and a WS subscriber on one topic; 20 publishes alternating REST and WS."""
    topic = "mixed/t"
    count = 20
    loop = asyncio.get_running_loop()
    sse_connected = loop.create_future()
    sse_done = loop.create_future()
    observed["sse"] = []

    def on_connected():
        loop.call_soon_threadsafe(lambda: sse_connected.done() or sse_connected.set_result(None))

    def on_done(error):
        def finish():
            if sse_done.done():
                return
            if error is None:
                sse_done.set_result(None)
            else:
                sse_done.set_exception(error)
                if not sse_connected.done():
                    sse_connected.set_exception(error)
        loop.call_soon_threadsafe(finish)

    threading.Thread(
        target=read_sse, args=(broker.port, topic, count, on_connected, on_done, observed["sse"]), daemon=True
    ).start()
    await asyncio.wait_for(sse_connected, RECEIVE_TIMEOUT)

    async with broker.connect(f"?topic={topic}") as subscriber, broker.connect() as publisher:
        connected = await receive(subscriber)
        if connected.get("type") != "connected":
            raise ScenarioError(f"first message: {json.dumps(connected)}")
        await receive(publisher)
        published = []
        for n in range(count):
            if n % 2 == 0:
                published.append(await broker.publish({"topic": topic, "data": {"n": n}}))
            else:
                await publisher.send(json.dumps({"type": "publish", "topic": topic, "data": {"n": n}, "ref": n}))
                ack = (await receive_until(publisher, of_type("ack")))[-1]
                published.append(ack.get("id"))
        observed["published"] = published
        observed["ws"] = []
        while len(observed["ws"]) < count:
            message = await receive(subscriber)
            if message.get("type") == "event":
                observed["ws"].append(message)
    await asyncio.wait_for(sse_done, RECEIVE_TIMEOUT)
    observed["sseIds"] = [frame["id"] for frame in observed["sse"]]
    observed["sseData"] = [frame.get("data") for frame in observed["sse"]]
    observed["wsIds"] = [message.get("id") for message in observed["ws"]]
    observed["wsData"] = [json.dumps(message.get("data"), separators=(",", ":")) for message in observed["ws"]]
    del observed["sse"], observed["ws"]


async def direct(broker, observed):
    """A direct message to the connection's clientId, then a broadcast."""
    async with broker.connect() as ws:
        connected = await receive(ws)
        observed["connected"] = connected
        client_id = connected.get("clientId")
        if not isinstance(client_id, str):
            raise ScenarioError(f"no clientId in {json.dumps(connected)}")
        observed["messageAnswer"] = await broker.post(
            "/api/message", {"to": client_id, "data": {"hello": "you"}, "event": "note"})
        observed["message"] = await receive_until(ws, of_type("event"))
        observed["broadcastAnswer"] = await broker.post("/api/messages/broadcast", {"data": "everyone"})
        observed["broadcast"] = await receive_until(ws, of_type("event"))


async def bad_json(broker, observed):
    """Messages the server must refuse with an error, and the connection still answering afterwards."""
    async with broker.connect() as ws:
        await receive(ws)
        sends = [
            ("notJSON", "{not json"),
            ("notAnObject", "[1,2]"),
            ("unknownType", json.dumps({"type": "dance", "ref": 7})),
            ("publishWithoutTopic", json.dumps({"type": "publish", "data": 1, "ref": "no-topic"})),
            ("pingAfterwards", json.dumps({"type": "ping", "ref": 8})),
        ]
        for name, text in sends:
            await ws.send(text)
            observed[name] = await receive_until(ws, lambda m: m.get("type") in ("error", "pong"))


async def invalid_utf8(broker, observed):
    """Text frames whose bytes are not UTF-8, after valid multi-byte UTF-8 (also split inside a character across
    two fragments), which must pass."""
    async with broker.connect() as ws:
        await receive(ws)
        valid = json.dumps({"type": "ping", "ref": "żółw ✓"}, ensure_ascii=False).encode("utf-8")
        await ws.send(valid, text=True)
        observed["validUTF8"] = await receive_until(ws, of_type("pong"))
        split = valid.index("ż".encode("utf-8")) + 1  # between the two bytes of one character
        await ws.send([valid[:split], valid[split:]], text=True)
        observed["splitAcrossFragments"] = await receive_until(ws, lambda m: m.get("type") == "pong")

        async def send_invalid(ws):
            await ws.send(b'{"type":"ping","ref":"\xff\xfe"}', text=True)

        observed["invalidByte"] = await close_code(ws, send_invalid)

    async with broker.connect() as ws:
        await receive(ws)

        async def send_surrogate(ws):  # UTF-16 surrogate D800 encoded as if it were a code point
            await ws.send(b'{"type":"ping","ref":"\xed\xa0\x80"}', text=True)

        observed["encodedSurrogate"] = await close_code(ws, send_surrogate)


def ping_of_size(size, ref_char="x"):
    """A ping message of exactly `size` bytes."""
    prefix, suffix = '{"type":"ping","ref":"', '"}'
    return prefix + ref_char * (size - len(prefix) - len(suffix)) + suffix


async def too_big(broker, observed, limit=4096):
    """Messages at and over the server's limit (4096 bytes in the Swift test), whole and in fragments."""
    async with broker.connect() as ws:
        await receive(ws)
        await ws.send(ping_of_size(limit))
        replies = await receive_until(ws, lambda m: m.get("type") in ("pong", "error"))
        observed["atLimit"] = [{"type": m.get("type"), "refBytes": len(m.get("ref", ""))} for m in replies]

        async def send_over(ws):
            await ws.send(ping_of_size(limit + 1))

        observed["overLimit"] = await close_code(ws, send_over)

    async with broker.connect() as ws:
        await receive(ws)
        await ws.send(['{"type":"ping",', '"ref":"fragments"}'])
        observed["smallFragments"] = await receive_until(ws, lambda m: m.get("type") in ("pong", "error"))
        at_limit = ping_of_size(limit)
        await ws.send([at_limit[:2000], at_limit[2000:]])
        replies = await receive_until(ws, lambda m: m.get("type") in ("pong", "error"))
        observed["fragmentsAtLimit"] = [{"type": m.get("type"), "refBytes": len(m.get("ref", ""))} for m in replies]

        message = ping_of_size(limit + 1000)
        half = len(message) // 2

        async def send_fragments(ws):
            await ws.send([message[:half], message[half:]])

        observed["fragmentsOverLimit"] = await close_code(ws, send_fragments)
        observed["fragmentBytes"] = [half, len(message) - half]


async def unsubscribe(broker, observed):
    """Subscribe a and b, unsubscribe b, publish b then a then a over REST: only the a events arrive."""
    async with broker.connect() as ws:
        await receive(ws)
        await ws.send(json.dumps({"type": "subscribe", "topics": ["unsub/a", "unsub/b"], "ref": 1}))
        observed["subscribe"] = await receive_until(ws, of_type("ack"))
        await ws.send(json.dumps({"type": "unsubscribe", "topics": ["unsub/b"], "ref": 2}))
        observed["unsubscribe"] = await receive_until(ws, of_type("ack"))
        observed["published"] = [
            await broker.publish({"topic": "unsub/b", "data": "b"}),
            await broker.publish({"topic": "unsub/a", "data": "a"}),
            await broker.publish({"topic": "unsub/a", "data": "last"}),
        ]
        observed["received"] = await receive_until(ws, event_with_id(observed["published"][2]))


async def compression(broker, observed):
    """With permessage-deflate offered (websockets' default): what the handshake agreed, and a large compressible
    publish over the compressed connection, acknowledged and delivered intact to a compressed and a plain subscriber."""
    async with broker.connect("?topic=zip", compression="deflate") as zipped, broker.connect("?topic=zip") as plain:
        observed["agreed"] = zipped.response.headers.get("Sec-WebSocket-Extensions")
        observed["plainAgreed"] = plain.response.headers.get("Sec-WebSocket-Extensions")
        await receive(zipped)
        await receive(plain)
        data = {"text": "compress me " * 5000}
        await zipped.send(json.dumps({"type": "publish", "topic": "zip", "data": data, "ref": "z"}))
        ack = await receive_until(zipped, of_type("ack"))
        observed["ack"] = ack[-1]["ref"]
        event_id = ack[-1]["id"]
        received = await receive_until(zipped, event_with_id(event_id))
        plain_received = await receive_until(plain, event_with_id(event_id))
        observed["intact"] = received[-1]["data"] == data
        observed["plainIntact"] = plain_received[-1]["data"] == data


SCENARIOS = {
    "compression": compression,
    "roundtrip": roundtrip,
    "resume": resume,
    "mixed": mixed,
    "direct": direct,
    "bad_json": bad_json,
    "invalid_utf8": invalid_utf8,
    "too_big": too_big,
    "unsubscribe": unsubscribe,
}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in SCENARIOS:
        print(f"usage: {sys.argv[0]} <{'|'.join(SCENARIOS)}> <port>")
        sys.exit(2)
    signal.alarm(HARD_LIMIT_SECONDS)  # the last resort if something blocks outside asyncio
    scenario, broker, observed = SCENARIOS[sys.argv[1]], Broker(int(sys.argv[2])), {}
    try:
        asyncio.run(asyncio.wait_for(scenario(broker, observed), SCENARIO_TIMEOUT))
    except BaseException as error:  # noqa: BLE001 - reported, whatever it is
        description = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        print(json.dumps({"error": description, "observed": observed}), flush=True)
        sys.exit(1)
    print(json.dumps(observed), flush=True)


if __name__ == "__main__":
    main()
