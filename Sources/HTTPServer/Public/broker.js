/*
 * broker.js: a browser client for EventBroker (Server-Sent Events, with a WebSocket fallback).
 * No build step, no dependency. A classic script that defines one global, `EventBroker`.
 *
 *   <script src="/broker.js"></script>
 *   <script>
 *     const client = EventBroker.connect({ topics: ["chat/general", "$presence/**"], name: "alice", since: "0" });
 *     client.on("event", (ev) => console.log(ev.id, ev.type, ev.data));   // history first, then live
 *     client.on("state", (s) => console.log(s.state, s.transport, s.lastEventId));
 *     client.on("ready", (r) => console.log("subscribed as", r.clientId)); // after every (re)connect
 *     client.publish("chat/general", { text: "hi" }, { event: "chat" })    // queued while offline
 *       .then((r) => console.log("stored as", r.id));
 *     client.setTopics(["chat/random", "$presence/**"], { since: "0" });   // reconnects with the last id
 *     // later: client.close();
 *   </script>
 *
 * EventBroker.connect(options) -> Client. Options (all optional):
 *   topics     selectors to receive (`*` one segment, final `**` one or more, `$presence/...`).
 *   name       display name sent as `?name=` (shown to others in presence).
 *   since      an event id ("0" = everything retained): when a topic is first subscribed, its retained events
 *              after `since` are fetched from GET /api/events/history and delivered (flagged `replay: true`).
 *   baseUrl    the broker's origin; default: the page's.
 *   transport  "auto" (default: SSE, WebSocket when EventSource is missing or never manages to open), "sse", "ws".
 *   share      true (default): the tabs of one origin share one connection. One tab (the leader, chosen with
 *              navigator.locks) holds it for the union of every tab's topics and relays each event to the others
 *              over a BroadcastChannel; when the leader tab closes, another takes over and resumes from the
 *              last event id. The shared connection's name is the leader's, else the first other tab's.
 *              Without BroadcastChannel or Web Locks each tab connects on its own.
 *   eventTypes SSE event types to listen for besides the built-in ones: message, chat, typing, join, leave,
 *              notification, broadcast, alert, announcement, info, warning, direct (EventSource only reports the
 *              types it is told about; the WebSocket delivers every type).
 *
 * Client:
 *   on(type, fn) -> unsubscribe function. Types:
 *     "event"  {id, type, data, topic, replay}: every event of the connection (data is parsed JSON when it parses,
 *              else the string; topic is null over SSE, which does not carry it). Over a shared connection every
 *              tab receives every event of the union: filter on the data. Deduplicated by id.
 *     "state"  {state: "connecting"|"open"|"reconnecting"|"offline"|"closed", transport: "sse"|"ws"|null,
 *               lastEventId, clientId, leader: bool, queued: n}
 *     "ready"  {clientId, transport}: the connection now carries this tab's topics (after each reconnect too):
 *              the moment to (re)read snapshots such as GET /api/topics/{topic}.
 *     "gap"    {lastEventId, oldestAvailable}: history could not reach back to the resume point.
 *     "history" {topics, count}: the history of newly subscribed topics has been delivered.
 *   publish(topic, data, {event, ephemeral, queue = true, key}) -> Promise<{id, ...}>: POST /api/events/publish
 *     with an Idempotency-Key (crypto.randomUUID, kept across retries). Network errors, 408, 429 (Retry-After)
 *     and 5xx are retried with backoff (and at once when the connection or the network comes back), so a message
 *     written offline is sent once when back. queue: false makes a single attempt (typing indicators).
 *   setTopics(topics, {since}) / setName(name): change the subscription; the connection resumes from the last id.
 *   state(): the current state object.  close(): stop (and hand the shared connection to another tab).
 * EventBroker.compareIds(a, b) -> -1 | 0 | 1 for decimal id strings (ids outgrow Number: compare them with this).
 * EventBroker.uuid() -> a random UUID (crypto.randomUUID when available), e.g. for your own Idempotency-Key.
 *
 * Resuming: the connection keeps the id of the last event it delivered and reconnects with `lastEventId` after any
 * drop (network error, server restart, an EventSource that gave up, a topic change), with exponential backoff
 * (0.5 s doubling to 8 s, with jitter; at once when the browser comes back online). Events are deduplicated by id.
 */
(function (global) {
  "use strict";

  var BUILTIN_TYPES = ["message", "chat", "typing", "join", "leave", "notification", "broadcast", "alert",
    "announcement", "info", "warning", "direct"];
  var FALLBACK_AFTER = 3; // consecutive failures, without ever opening, before trying the other transport
  var BACKOFF_MIN = 500;
  var BACKOFF_MAX = 8000;
  var HEARTBEAT_MS = 4000;
  var TAB_EXPIRY_MS = 150000;

  function compareIds(a, b) {
    a = String(a); b = String(b);
    if (a.length !== b.length) return a.length < b.length ? -1 : 1;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  function maxId(a, b) {
    if (a == null) return b == null ? null : b;
    if (b == null) return a;
    return compareIds(a, b) >= 0 ? a : b;
  }
  function uuid() {
    if (global.crypto && typeof global.crypto.randomUUID === "function") return global.crypto.randomUUID();
    var b = new Uint8Array(16);
    if (global.crypto && global.crypto.getRandomValues) global.crypto.getRandomValues(b);
    else for (var i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  function parseData(text) {
    if (typeof text !== "string") return text;
    try { return JSON.parse(text); } catch (e) { return text; }
  }
  function sameList(a, b) {
    if (!a || !b || a.length !== b.length) return false;
    for (var i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  function uniqSorted(list) {
    var out = [];
    list.slice().sort().forEach(function (t) { if (out[out.length - 1] !== t) out.push(t); });
    return out;
  }
  function backoff(attempt) {
    var d = Math.min(BACKOFF_MAX, BACKOFF_MIN * Math.pow(2, attempt));
    return Math.round(d * (0.6 + Math.random() * 0.4));
  }
  function sleep(ms, wake) {
    return new Promise(function (resolve) {
      var t = setTimeout(done, ms);
      function done() { clearTimeout(t); resolve(); }
      if (wake) wake.push(done);
    });
  }
  function online() { return typeof navigator === "undefined" || navigator.onLine !== false; }

  function Emitter() { this._l = {}; }
  Emitter.prototype.on = function (type, fn) {
    var list = this._l[type] || (this._l[type] = []);
    list.push(fn);
    return function () { var i = list.indexOf(fn); if (i >= 0) list.splice(i, 1); };
  };
  Emitter.prototype.emit = function (type, arg) {
    (this._l[type] || []).slice().forEach(function (fn) {
      try { fn(arg); } catch (e) { setTimeout(function () { throw e; }); }
    });
  };

  // ---------------------------------------------------------------------------------------------------------
  // Connection: one SSE or WebSocket connection for a set of topics, resuming from its cursor after any drop.
  // host: {baseUrl, transport, eventTypes, onEvent(ev), onStatus(status)}
  function Connection(host, leaderId) {
    this.host = host;
    this.leaderId = leaderId;
    this.topics = [];
    this.name = null;
    this.cursor = null;
    this.mode = host.transport === "ws" || typeof global.EventSource === "undefined" ? "ws" : "sse";
    this.failures = 0;
    this.attempt = 0;
    this.everOpened = false;
    this.seq = 0;
    this.es = null;
    this.ws = null;
    this.timer = null;
    this.openTopics = [];
    this.clientId = null;
    this.state = "connecting";
    this.closed = false;
    var self = this;
    this._online = function () { if (self.state !== "open") self._reconnectNow(); };
    // The browser says the network is gone: the stream is as good as dead; wait for "online" (or the backoff).
    this._offline = function () {
      if (self.closed || !self.topics.length) return;
      self._teardown();
      self._status("offline");
      self.timer = setTimeout(function () { self.timer = null; self._open(); }, backoff(self.attempt++));
    };
    if (global.addEventListener) {
      global.addEventListener("online", this._online);
      global.addEventListener("offline", this._offline);
    }
  }
  Connection.prototype.status = function () {
    return {
      state: this.state, transport: this.mode, lastEventId: this.cursor, clientId: this.clientId,
      topics: this.state === "open" ? this.openTopics.slice() : [], connId: this.leaderId + ":" + this.seq,
    };
  };
  Connection.prototype._status = function (state) {
    this.state = state;
    this.host.onStatus(this.status());
  };
  Connection.prototype.update = function (topics, name) {
    topics = uniqSorted(topics);
    name = name || null;
    if (sameList(topics, this.topics) && name === this.name && (this.es || this.ws || this.timer)) return;
    var nameChanged = name !== this.name;
    var old = this.topics;
    this.topics = topics;
    this.name = name;
    if (this.mode === "ws" && this.ws && this.wsReady && !nameChanged && topics.length) {
      this._wsChange(old, topics);
      return;
    }
    this._restart();
  };
  Connection.prototype._teardown = function () {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.es) { this.es.close(); this.es = null; }
    if (this.ws) { var ws = this.ws; this.ws = null; try { ws.close(1000); } catch (e) { /* closing anyway */ } }
    this.wsReady = false;
  };
  Connection.prototype._restart = function () {
    this._teardown();
    if (this.closed) return;
    if (!this.topics.length) { this._status("connecting"); return; }
    this._status(this.state === "offline" || this.state === "reconnecting" ? this.state : "connecting");
    this._open();
  };
  Connection.prototype._reconnectNow = function () {
    if (this.closed || this.es || (this.ws && this.wsReady)) return;
    this._teardown();
    this.attempt = 0;
    this._open();
  };
  Connection.prototype._open = function () {
    this.seq++;
    if (this.mode === "sse") this._openSSE(); else this._openWS();
  };
  Connection.prototype._opened = function (clientId, topics) {
    this.everOpened = true;
    this.failures = 0;
    this.attempt = 0;
    this.clientId = clientId;
    this.openTopics = topics.slice();
    this._status("open");
  };
  Connection.prototype._failed = function (neverOpened) {
    if (this.closed) return;
    if (neverOpened) this.failures++;
    if (!this.everOpened && this.failures >= FALLBACK_AFTER && this.host.transport === "auto") {
      if (this.mode === "sse") { this.mode = "ws"; this.failures = 0; this.attempt = 0; }
      else if (typeof global.EventSource !== "undefined") { this.mode = "sse"; this.failures = 0; }
    }
    this._status(online() ? "reconnecting" : "offline");
    var self = this;
    clearTimeout(this.timer);
    this.timer = setTimeout(function () { self.timer = null; self._open(); }, backoff(this.attempt++));
  };
  Connection.prototype._deliver = function (ev) {
    if (ev.id != null && ev.id !== "") {
      if (this.cursor != null && compareIds(ev.id, this.cursor) <= 0) return; // already delivered
      this.cursor = ev.id;
    }
    this.host.onEvent(ev);
  };
  Connection.prototype._url = function (path) {
    var base = this.host.baseUrl || (global.location ? global.location.origin : "");
    return base.replace(/\/$/, "") + path;
  };
  Connection.prototype._openSSE = function () {
    var q = this.topics.map(function (t) { return "topic=" + encodeURIComponent(t); });
    if (this.name) q.push("name=" + encodeURIComponent(this.name));
    if (this.cursor != null) q.push("lastEventId=" + encodeURIComponent(this.cursor));
    var es;
    try { es = new global.EventSource(this._url("/api/events?" + q.join("&"))); } catch (e) { this._failed(true); return; }
    this.es = es;
    var self = this;
    var opened = false;
    var topics = this.topics.slice();
    es.addEventListener("connected", function (e) {
      if (self.es !== es) return;
      opened = true;
      var info = parseData(e.data) || {};
      self._opened(info.clientId || null, topics);
    });
    es.addEventListener("gap", function (e) {
      if (self.es !== es) return;
      self.host.onEvent({ id: null, type: "gap", data: parseData(e.data), topic: null });
    });
    var lastId = "";
    var onEvent = function (e) {
      if (self.es !== es) return;
      // EventSource keeps the previous id for an event that has none; one stream never repeats an id, so the
      // same id again means "no id".
      var id = e.lastEventId && e.lastEventId !== lastId ? e.lastEventId : null;
      if (id) lastId = id;
      self._deliver({ id: id, type: e.type, data: parseData(e.data), topic: null });
    };
    BUILTIN_TYPES.concat(this.host.eventTypes || []).forEach(function (t) { es.addEventListener(t, onEvent); });
    es.onerror = function () {
      if (self.es !== es) return;
      // Take over from EventSource's own retry: reconnect with our cursor (and new topics), with backoff.
      es.close();
      self.es = null;
      self._failed(!opened);
    };
  };
  Connection.prototype._openWS = function () {
    if (typeof global.WebSocket === "undefined") { this._failed(true); return; }
    var url = this._url("/api/ws").replace(/^http/, "ws") + (this.name ? "?name=" + encodeURIComponent(this.name) : "");
    var ws;
    try { ws = new global.WebSocket(url); } catch (e) { this._failed(true); return; }
    this.ws = ws;
    this.wsReady = false;
    var self = this;
    var opened = false;
    var ref = "sub-" + this.seq;
    var topics = this.topics.slice();
    ws.onmessage = function (m) {
      if (self.ws !== ws) return;
      var msg;
      try { msg = JSON.parse(m.data); } catch (e) { return; }
      if (msg.type === "connected") {
        self.clientId = msg.clientId || null;
        var sub = { type: "subscribe", topics: topics, ref: ref };
        if (self.cursor != null) sub.lastEventId = self.cursor;
        ws.send(JSON.stringify(sub));
      } else if (msg.type === "ack") {
        if (msg.ref === ref) {
          opened = true;
          self.wsReady = true;
          self._opened(self.clientId, topics);
        } else if (self.pendingRef && msg.ref === self.pendingRef.ref) {
          var t = self.pendingRef.topics;
          self.pendingRef = null;
          self.openTopics = t.slice();
          self._status("open");
        }
      } else if (msg.type === "event") {
        if (msg.event === "gap") { self.host.onEvent({ id: null, type: "gap", data: msg.data, topic: msg.topic || null }); return; }
        self._deliver({ id: msg.id != null ? String(msg.id) : null, type: msg.event || "message", data: msg.data, topic: msg.topic || null });
      } else if (msg.type === "error") {
        if (msg.ref === ref) { try { ws.close(); } catch (e) { /* closing anyway */ } }
      }
    };
    ws.onclose = function () {
      if (self.ws !== ws) return;
      self.ws = null;
      self.wsReady = false;
      self._failed(!opened);
    };
  };
  Connection.prototype._wsChange = function (old, now) {
    var removed = old.filter(function (t) { return now.indexOf(t) < 0; });
    var added = now.filter(function (t) { return old.indexOf(t) < 0; });
    if (removed.length) this.ws.send(JSON.stringify({ type: "unsubscribe", topics: removed }));
    if (added.length) {
      // Live from now; the history of the added topics is read over REST once they are covered.
      this.pendingRef = { ref: "add-" + (++this.seq), topics: now.slice() };
      this.ws.send(JSON.stringify({ type: "subscribe", topics: added, ref: this.pendingRef.ref }));
    } else {
      this.openTopics = now.slice();
      this._status("open");
    }
  };
  Connection.prototype.close = function () {
    this.closed = true;
    this._teardown();
    if (global.removeEventListener) {
      global.removeEventListener("online", this._online);
      global.removeEventListener("offline", this._offline);
    }
  };

  // ---------------------------------------------------------------------------------------------------------
  // Client: what the page uses. Leader or follower of the tabs that share one connection.
  function Client(options) {
    Emitter.call(this);
    options = options || {};
    this.baseUrl = (options.baseUrl || (global.location ? global.location.origin : "")).replace(/\/$/, "");
    this.transport = options.transport || "auto";
    this.eventTypes = options.eventTypes || [];
    this.topics = uniqSorted(options.topics || []);
    this.name = options.name || null;
    this.since = options.since != null ? String(options.since) : null;
    this.tabId = uuid();
    this.seen = new Set();
    this.cursor = null;
    this.historyDone = {}; // topic -> true once its history has been fetched
    this.conn = null;
    this.leader = false;
    this.remote = null; // the leader's status, when following
    this.readyConn = null;
    this.tabs = {};
    this.queue = [];
    this.wakers = [];
    this.closed = false;
    var share = options.share !== false && typeof global.BroadcastChannel !== "undefined" &&
      typeof navigator !== "undefined" && navigator.locks && typeof navigator.locks.request === "function";
    var self = this;
    this._wake = function () { var w = self.wakers; self.wakers = []; w.forEach(function (f) { f(); }); };
    if (global.addEventListener) global.addEventListener("online", this._wake);
    if (share) this._startShared(); else this._becomeLeader();
  }
  Client.prototype = Object.create(Emitter.prototype);
  Client.prototype.constructor = Client;

  Client.prototype._startShared = function () {
    var self = this;
    this.channel = new global.BroadcastChannel("eventbroker:" + this.baseUrl);
    this.channel.onmessage = function (m) { self._onChannel(m.data); };
    this._hello();
    this.heartbeat = setInterval(function () { self._hello(); self._expireTabs(); }, HEARTBEAT_MS);
    this._bye = function () { self.close(); };
    global.addEventListener("pagehide", this._bye);
    navigator.locks.request("eventbroker:" + this.baseUrl, function () {
      if (self.closed) return undefined;
      return new Promise(function (release) { self._release = release; self._becomeLeader(); });
    }).catch(function () { /* the lock is gone with the page */ });
    this._emitState();
  };
  Client.prototype._post = function (msg) { if (this.channel) this.channel.postMessage(msg); };
  Client.prototype._hello = function () {
    var me = { tab: this.tabId, topics: this.topics, name: this.name, at: Date.now() };
    this._noteTab(me);
    this._post({ t: "hello", tab: me.tab, topics: me.topics, name: me.name });
  };
  Client.prototype._noteTab = function (m) {
    var prev = this.tabs[m.tab];
    this.tabs[m.tab] = { topics: m.topics || [], name: m.name || null, seen: Date.now(), since: prev ? prev.since : Date.now() };
    if (!prev || !sameList(prev.topics, m.topics || []) || prev.name !== (m.name || null)) this._recompute();
  };
  Client.prototype._expireTabs = function () {
    var now = Date.now();
    var changed = false;
    for (var k in this.tabs) {
      if (k !== this.tabId && now - this.tabs[k].seen > TAB_EXPIRY_MS) { delete this.tabs[k]; changed = true; }
    }
    if (changed) this._recompute();
  };
  Client.prototype._onChannel = function (m) {
    if (!m || this.closed) return;
    switch (m.t) {
      case "hello":
        this._noteTab(m);
        if (this.leader && this.conn) this._post({ t: "status", status: this._leaderStatus() });
        break;
      case "bye":
        if (this.tabs[m.tab]) { delete this.tabs[m.tab]; this._recompute(); }
        if (m.leader && !this.leader) { this.remote = null; this.readyConn = null; this._emitState("reconnecting"); }
        break;
      case "who":
        this._hello();
        break;
      case "event":
        if (!this.leader) this._dispatch(m.ev, false);
        break;
      case "status":
        if (!this.leader) this._onStatus(m.status);
        break;
    }
  };
  Client.prototype._becomeLeader = function () {
    if (this.closed) return;
    var self = this;
    this.leader = true;
    this.conn = new Connection({
      baseUrl: this.baseUrl, transport: this.transport, eventTypes: this.eventTypes,
      onEvent: function (ev) { self._dispatch(ev, false); self._post({ t: "event", ev: ev }); },
      onStatus: function () { var st = self._leaderStatus(); self._onStatus(st); self._post({ t: "status", status: st }); },
    }, this.tabId);
    if (this.remote && this.remote.transport) this.conn.mode = this.remote.transport === "ws" || typeof global.EventSource === "undefined" ? "ws" : "sse";
    this.conn.cursor = maxId(this.cursor, this.remote ? this.remote.lastEventId : null);
    this._post({ t: "who" });
    // Give the other tabs a moment to announce their topics, so the first connection carries them all.
    setTimeout(function () { self._recompute(true); }, this.channel ? 120 : 0);
  };
  Client.prototype._leaderStatus = function () {
    var s = this.conn.status();
    s.leader = this.tabId;
    return s;
  };
  Client.prototype._recompute = function (force) {
    if (!this.leader || !this.conn || this.closed) return;
    if (!force && !this.conn.es && !this.conn.ws && !this.conn.timer && !this._started) return;
    this._started = true;
    var topics = [];
    var name = this.name;
    var self = this;
    var ids = Object.keys(this.tabs).sort(function (a, b) { return self.tabs[a].since - self.tabs[b].since; });
    if (!this.channel) topics = this.topics.slice();
    ids.forEach(function (id) {
      topics = topics.concat(self.tabs[id].topics);
      if (!name && self.tabs[id].name) name = self.tabs[id].name;
    });
    if (!this.channel || !this.tabs[this.tabId]) topics = topics.concat(this.topics);
    this.conn.update(uniqSorted(topics), name);
  };
  Client.prototype._onStatus = function (st) {
    this.remote = st;
    if (st.lastEventId != null) this.cursor = maxId(this.cursor, st.lastEventId);
    var covered = st.state === "open" && this.topics.every(function (t) { return st.topics.indexOf(t) >= 0; });
    this._emitState();
    if (covered && this.readyConn !== st.connId) {
      this.readyConn = st.connId;
      this.emit("ready", { clientId: st.clientId, transport: st.transport });
      this._fetchHistory();
    }
  };
  Client.prototype.state = function () {
    var r = this.remote;
    var state = r ? r.state : "connecting";
    if (this.closed) state = "closed";
    else if (state === "open" && !this.topics.every(function (t) { return r.topics.indexOf(t) >= 0; })) state = "connecting";
    else if (state !== "open" && !online()) state = "offline";
    if (this._forced && state !== "open") state = this._forced;
    return {
      state: state, transport: r ? r.transport : null, lastEventId: maxId(this.cursor, r ? r.lastEventId : null),
      clientId: r ? r.clientId : null, leader: this.leader, queued: this.queue.length,
    };
  };
  Client.prototype._emitState = function (forced) {
    this._forced = forced || null;
    var s = this.state();
    if (s.state === "open") this._wake();
    this.emit("state", s);
  };
  Client.prototype._dispatch = function (ev, replay) {
    if (!ev) return;
    if (ev.type === "gap") { this.emit("gap", ev.data); return; }
    if (ev.id != null) {
      if (this.seen.has(ev.id)) return;
      this.seen.add(ev.id);
      if (this.seen.size > 20000) this.seen.delete(this.seen.values().next().value);
      if (!replay) this.cursor = maxId(this.cursor, ev.id);
    }
    this.emit("event", { id: ev.id, type: ev.type || "message", data: ev.data, topic: ev.topic || null, replay: !!replay });
    if (!replay) this.emit("state", this.state());
  };
  Client.prototype._fetchHistory = function () {
    if (this.since == null) return;
    var self = this;
    var topics = this.topics.filter(function (t) { return t.charAt(0) !== "$" && !self.historyDone[t]; });
    if (!topics.length) return;
    topics.forEach(function (t) { self.historyDone[t] = true; });
    var after = this.since;
    var count = 0;
    var page = function () {
      var q = topics.map(function (t) { return "topic=" + encodeURIComponent(t); });
      q.push("after=" + encodeURIComponent(after), "limit=1000");
      return fetch(self.baseUrl + "/api/events/history?" + q.join("&"), { cache: "no-store" })
        .then(function (res) { if (!res.ok) throw new Error("history: HTTP " + res.status); return res.json(); })
        .then(function (body) {
          var events = body.events || [];
          events.forEach(function (e) {
            count++;
            self._dispatch({ id: String(e.id), type: e.event || "message", data: e.data, topic: e.topic || null }, true);
          });
          if (events.length >= 1000 && body.nextAfter && body.nextAfter !== after) { after = body.nextAfter; return page(); }
          return undefined;
        });
    };
    page().then(function () { self.emit("history", { topics: topics, count: count }); }, function () {
      // Try again on the next (re)connect.
      topics.forEach(function (t) { delete self.historyDone[t]; });
      self.readyConn = null;
    });
  };
  Client.prototype.setTopics = function (topics, opts) {
    this.topics = uniqSorted(topics || []);
    if (opts && "since" in opts) this.since = opts.since != null ? String(opts.since) : null;
    var self = this;
    Object.keys(this.historyDone).forEach(function (t) { if (self.topics.indexOf(t) < 0) delete self.historyDone[t]; });
    this.readyConn = null;
    this._changed();
  };
  Client.prototype.setName = function (name) {
    if ((name || null) === this.name) return;
    this.name = name || null;
    this.readyConn = null;
    this._changed();
  };
  Client.prototype._changed = function () {
    if (this.channel) this._hello(); else this._recompute(true);
    if (this.leader) this._recompute(true);
    if (this.remote) this._onStatus(this.remote);
  };

  // Publishing: a queue, sent in order, each with its own Idempotency-Key kept across retries.
  Client.prototype.publish = function (topic, data, opts) {
    opts = opts || {};
    var self = this;
    var body = { topic: topic, data: data };
    if (opts.event) body.event = opts.event;
    if (opts.ephemeral) body.ephemeral = true;
    var item = { body: body, key: opts.key || uuid(), attempts: 0 };
    var p = new Promise(function (resolve, reject) { item.resolve = resolve; item.reject = reject; });
    if (opts.queue === false) {
      this._send(item).then(function (r) { if (r.ok) item.resolve(r.body); else item.reject(r.error); },
        function (e) { item.reject(e); });
      return p;
    }
    this.queue.push(item);
    this._emitState();
    this._pump();
    return p;
  };
  Client.prototype._send = function (item) {
    item.attempts++;
    return fetch(this.baseUrl + "/api/events/publish", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": item.key },
      body: JSON.stringify(item.body),
    }).then(function (res) {
      return res.text().then(function (text) {
        var body = parseData(text);
        if (res.ok) return { ok: true, body: body };
        var retry = res.status === 408 || res.status === 429 || res.status >= 500;
        var err = new Error((body && body.error && body.error.message) || "HTTP " + res.status);
        err.status = res.status;
        err.code = body && body.error && body.error.code;
        var after = parseFloat(res.headers.get("Retry-After"));
        return { ok: false, retry: retry, error: err, after: isFinite(after) ? after * 1000 : null };
      });
    }, function (e) { return { ok: false, retry: true, error: e, after: null }; });
  };
  Client.prototype._pump = function () {
    if (this.pumping) return;
    this.pumping = true;
    var self = this;
    var step = function () {
      if (self.closed || !self.queue.length) { self.pumping = false; self._emitState(self._forced); return; }
      var item = self.queue[0];
      self._send(item).then(function (r) {
        if (r.ok || !r.retry) {
          self.queue.shift();
          if (r.ok) item.resolve(r.body); else item.reject(r.error);
          self._emitState(self._forced);
          step();
          return;
        }
        var wait = r.after != null ? r.after : backoff(Math.min(item.attempts - 1, 5));
        sleep(wait, r.after != null ? null : self.wakers).then(step);
      });
    };
    step();
  };
  Client.prototype.close = function () {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    if (global.removeEventListener) {
      global.removeEventListener("online", this._wake);
      if (this._bye) global.removeEventListener("pagehide", this._bye);
    }
    this._post({ t: "bye", tab: this.tabId, leader: this.leader });
    if (this.conn) this.conn.close();
    if (this._release) this._release();
    if (this.channel) this.channel.close();
    this.emit("state", this.state());
  };

  global.EventBroker = {
    connect: function (options) { return new Client(options); },
    compareIds: compareIds,
    uuid: uuid,
  };
})(typeof window !== "undefined" ? window : globalThis);
