/*
 * The chat page: a lobby of active rooms and, per room, its history, live messages, presence and typing.
 * Every user-supplied string reaches the DOM through textContent or attributes set with setAttribute: never
 * innerHTML. Messages are published as `chat` events whose data carries the room, so that a tab sharing its
 * connection with tabs in other rooms can tell them apart (SSE does not say which topic an event came on).
 */
(function () {
  "use strict";

  var TYPING_SHOW_MS = 3000;
  var TYPING_SEND_EVERY_MS = 1500;
  var TOAST_MS = 6000;
  var MAX_NOTIFICATIONS = 50;
  var TOPIC_RE = /^[A-Za-z0-9._\-:\/@]+$/;
  var QUIET_TYPES = { chat: 1, typing: 1, join: 1, leave: 1, connected: 1, gap: 1 };

  var $ = function (id) { return document.querySelector('[data-testid="' + id + '"]'); };
  var cmp = EventBroker.compareIds;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") node.textContent = attrs[k];
        else if (k === "className") node.className = attrs[k];
        else if (attrs[k] != null) node.setAttribute(k, attrs[k]);
      });
    }
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }
  function store(key, value) {
    try {
      if (value === undefined) return localStorage.getItem(key);
      if (value === null) localStorage.removeItem(key); else localStorage.setItem(key, value);
    } catch (e) { /* storage unavailable */ }
    return null;
  }
  function utf8Length(s) { return new TextEncoder().encode(s).length; }
  function validName(s) {
    // eslint-disable-next-line no-control-regex
    return s.length > 0 && utf8Length(s) <= 64 && !/[\u0000-\u001f\u007f-\u009f]/.test(s);
  }
  function validRoom(s) {
    return s.length > 0 && utf8Length(s) <= 256 && TOPIC_RE.test(s) && s.split("/").every(function (p) { return p.length > 0; }) &&
      s.indexOf("*") < 0;
  }
  function hue(s) {
    var h = 0;
    for (var i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) % 360;
    return h;
  }
  function avatar(name, extra) {
    var n = (name || "?").trim();
    var a = el("span", { className: "avatar" + (extra ? " " + extra : ""), "aria-hidden": "true", text: Array.from(n)[0] ? Array.from(n)[0].toUpperCase() : "?" });
    a.style.setProperty("--h", String(hue(n)));
    return a;
  }
  function timeText(ms) {
    var d = new Date(typeof ms === "number" ? ms : Date.now());
    var time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (d.toDateString() === new Date().toDateString()) return time;
    return d.toLocaleDateString([], { month: "short", day: "numeric" }) + ", " + time;
  }
  function describe(data) {
    if (data == null) return "";
    if (typeof data === "string") return data;
    if (typeof data === "object") {
      var t = data.message || data.text || data.title || data.body;
      if (typeof t === "string") return t;
    }
    try { return JSON.stringify(data); } catch (e) { return String(data); }
  }

  // ------------------------------------------------------------------------------------------------------------
  var userId = store("eb.userId");
  if (!userId) { userId = EventBroker.uuid(); store("eb.userId", userId); }
  var me = { name: store("eb.name") || "", userId: userId, clientId: null };
  var room = null; // the current room, or null in the lobby
  var messages = new Map(); // event id or "pending:<key>" -> li
  var pending = new Map(); // idempotency key -> li
  var members = new Map(); // clientId -> {name, transport, since}
  var presenceAsOf = null;
  var presenceBuffer = null;
  var typers = new Map(); // userId -> {name, until}
  var rooms = new Map(); // topic -> {members, asOf, lastEventId, historySize}
  var lobbyBuffer = null;
  var lastTypingSent = 0;
  var epoch = 0; // bumps on every room change, so stale async answers are dropped

  var client = EventBroker.connect({ topics: ["$presence/**"], name: me.name || null, since: "0" });

  // ------------------------------------------------------------------------------------------------------------
  // Connection state
  var STATE_TEXT = { connecting: "connecting", open: "live", reconnecting: "reconnecting", offline: "offline", closed: "closed" };
  client.on("state", function (s) {
    var badge = $("connection-state");
    badge.setAttribute("data-state", s.state);
    badge.setAttribute("title", "Connection: " + s.state + (s.leader ? " (this tab holds the connection)" : " (shared with another tab)"));
    $("connection-state-text").textContent = STATE_TEXT[s.state] || s.state;
    $("transport").textContent = s.transport === "ws" ? "WebSocket" : s.transport === "sse" ? "SSE" : "–";
    $("transport").setAttribute("data-transport", s.transport || "");
    $("transport-note").hidden = s.transport !== "ws";
    $("transport").parentNode.setAttribute("title", s.transport === "ws"
      ? "Transport: WebSocket, the fallback used when Server-Sent Events are unavailable"
      : "Transport: Server-Sent Events");
    $("last-event-id").textContent = s.lastEventId || "–";
    var q = $("queued");
    q.hidden = !s.queued;
    q.textContent = s.queued ? s.queued + " queued" : "";
    if (s.clientId) me.clientId = s.clientId;
    document.body.setAttribute("data-connection", s.state);
    var banner = $("connection-banner");
    var down = s.state === "reconnecting" || s.state === "offline";
    banner.hidden = !down;
    if (down) {
      banner.setAttribute("data-state", s.state);
      $("connection-banner-text").textContent = (s.state === "offline" ? "You are offline." : "Connection lost, reconnecting…") +
        " Messages you send are kept and delivered once the connection is back" +
        (s.lastEventId ? "; the room resumes after event " + s.lastEventId + "." : ".");
    }
  });

  client.on("ready", function (r) {
    me.clientId = r.clientId;
    if (room) loadPresence(room); else loadLobby();
  });

  client.on("gap", function () {
    notify("Some events were missed", "History no longer reaches back to the last event seen.", "gap", false);
  });

  client.on("event", function (ev) {
    var d = ev.data;
    if (ev.type === "join" || ev.type === "leave") { onPresence(ev); return; }
    if (ev.type === "chat" && d && typeof d === "object") {
      if (d.room === room) addMessage(ev);
      return;
    }
    if (ev.type === "typing") {
      if (d && d.room === room && d.userId !== me.userId) {
        typers.set(d.userId || d.clientId || d.name, { name: String(d.name || "someone"), until: Date.now() + TYPING_SHOW_MS });
        renderTyping();
      }
      return;
    }
    if (QUIET_TYPES[ev.type] || ev.replay) return;
    var title = ev.type === "message" ? "Broadcast" : ev.type.charAt(0).toUpperCase() + ev.type.slice(1);
    notify(title, describe(d), ev.type, true, ev.id);
  });

  // ------------------------------------------------------------------------------------------------------------
  // Messages
  function addMessage(ev) {
    var d = ev.data;
    if (messages.has(ev.id)) return;
    var li = buildMessage(d, ev.id, false);
    messages.set(ev.id, li);
    if (d.key && pending.has(d.key)) {
      var p = pending.get(d.key);
      pending.delete(d.key);
      if (p.parentNode) p.parentNode.removeChild(p);
    }
    // Keep the list in id order: history may arrive after the first live events.
    var list = $("message-list");
    var atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    var after = list.lastElementChild; // usually the right place: walk back only past newer or pending ones
    while (after && (!after.hasAttribute("data-id") || cmp(after.getAttribute("data-id"), ev.id) > 0)) {
      after = after.previousElementSibling;
    }
    list.insertBefore(li, after ? after.nextSibling : list.firstChild);
    regroup(li);
    regroup(li.nextSibling);
    if (d.userId && typers.delete(d.userId)) renderTyping();
    if (document.hidden && !ev.replay && d.userId !== me.userId) { unread++; renderTitle(); }
    renderEmpty();
    if (atBottom || d.userId === me.userId) list.scrollTop = list.scrollHeight;
  }
  function buildMessage(d, id, isPending) {
    var mine = d.userId === me.userId;
    var name = String(d.name || "anonymous");
    var li = el("li", {
      className: "message" + (mine ? " mine" : "") + (isPending ? " pending" : ""),
      "data-testid": isPending ? "message-pending" : "message",
      "data-id": isPending ? null : id,
      "data-author": name,
      "data-user": String(d.userId || "name:" + name),
      "data-ts": String(typeof d.sentAt === "number" ? d.sentAt : Date.now()),
    });
    var body = el("div", { className: "bubble" }, [
      el("div", { className: "meta" }, [
        el("span", { className: "author", "data-testid": "message-author", text: name }),
        el("time", { className: "time", text: isPending ? "sending…" : timeText(d.sentAt), datetime: new Date(d.sentAt || Date.now()).toISOString() }),
      ]),
      el("p", { className: "text", "data-testid": "message-text", text: String(d.text == null ? "" : d.text) }),
    ]);
    li.appendChild(avatar(name));
    li.appendChild(body);
    return li;
  }
  // A message right after one of the same author (within 5 minutes) drops its avatar and name.
  function regroup(li) {
    if (!li || !li.classList) return;
    var prev = li.previousSibling;
    var same = prev && prev.getAttribute("data-user") === li.getAttribute("data-user") &&
      Math.abs(Number(li.getAttribute("data-ts")) - Number(prev.getAttribute("data-ts"))) < 5 * 60 * 1000;
    li.classList.toggle("cont", !!same);
  }
  var unread = 0;
  function renderTitle() {
    var base = room ? "#" + room + " · EventBroker Chat" : "EventBroker Chat";
    document.title = (unread ? "(" + unread + ") " : "") + base;
  }
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && unread) { unread = 0; renderTitle(); }
  });
  function renderEmpty() {
    $("messages-empty").hidden = $("message-list").children.length > 0;
  }
  function send(text) {
    var key = EventBroker.uuid();
    var data = { room: room, text: text, name: me.name, userId: me.userId, key: key, sentAt: Date.now() };
    var li = buildMessage(data, null, true);
    pending.set(key, li);
    var list = $("message-list");
    list.appendChild(li);
    regroup(li);
    list.scrollTop = list.scrollHeight;
    renderEmpty();
    lastTypingSent = 0;
    client.publish(room, data, { event: "chat", key: key }).catch(function (e) {
      li.classList.add("failed");
      li.querySelector("time").textContent = "not sent: " + e.message;
    });
  }

  // ------------------------------------------------------------------------------------------------------------
  // Presence
  function loadPresence(forRoom) {
    var mine = epoch;
    presenceBuffer = [];
    fetch("/api/topics/" + encodeURIComponent(forRoom), { cache: "no-store" })
      .then(function (res) {
        if (res.status === 404) return { members: [], presenceAsOf: null };
        if (!res.ok) throw new Error("HTTP " + res.status);
        return res.json();
      })
      .then(function (t) {
        if (mine !== epoch) return;
        members = new Map();
        (t.members || []).forEach(function (m) { members.set(m.clientId, { name: m.name, transport: m.transport, since: m.since }); });
        presenceAsOf = t.presenceAsOf || null;
        var buffered = presenceBuffer || [];
        presenceBuffer = null;
        buffered.forEach(applyPresence);
        renderMembers();
      })
      .catch(function () { if (mine === epoch) { presenceBuffer = null; } });
  }
  function onPresence(ev) {
    var d = ev.data || {};
    if (typeof d !== "object") return;
    lobbyPresence(ev);
    if (!room || d.topic !== room) return;
    if (presenceBuffer) { presenceBuffer.push(ev); return; }
    applyPresence(ev);
    renderMembers();
  }
  function applyPresence(ev) {
    if (presenceAsOf != null && ev.id != null && cmp(ev.id, presenceAsOf) <= 0) return;
    var d = ev.data;
    if (ev.type === "join") members.set(d.clientId, { name: d.name, transport: d.transport, since: d.time });
    else members.delete(d.clientId);
  }
  function renderMembers() {
    var list = $("member-list");
    list.textContent = "";
    var arr = Array.from(members.entries()).sort(function (a, b) {
      var an = (a[1].name || "").toLowerCase(), bn = (b[1].name || "").toLowerCase();
      return an < bn ? -1 : an > bn ? 1 : a[0] < b[0] ? -1 : 1;
    });
    arr.forEach(function (e) {
      var name = e[1].name || "anonymous";
      var isMe = e[0] === me.clientId;
      list.appendChild(el("li", { className: "member" + (isMe ? " me" : ""), "data-testid": "member", "data-client-id": e[0], "data-name": name, "data-transport": e[1].transport || "" }, [
        avatar(name, "small"),
        el("span", { className: "member-name", "data-testid": "member-name", text: name }),
        isMe ? el("span", { className: "tag", text: "you" }) : null,
        el("span", { className: "transport-tag", text: e[1].transport === "ws" ? "ws" : "sse", title: "Connected over " + (e[1].transport === "ws" ? "WebSocket" : "Server-Sent Events") }),
      ]));
    });
    $("member-count").textContent = String(arr.length);
    $("member-count").setAttribute("aria-label", arr.length + (arr.length === 1 ? " person" : " people") + " here");
    $("room-summary").textContent = arr.length + (arr.length === 1 ? " person here" : " people here");
  }

  // ------------------------------------------------------------------------------------------------------------
  // Typing
  function renderTyping() {
    var now = Date.now();
    typers.forEach(function (v, k) { if (v.until <= now) typers.delete(k); });
    var names = Array.from(typers.values()).map(function (v) { return v.name; });
    var node = $("typing-indicator");
    var text = "";
    if (names.length === 1) text = names[0] + " is typing…";
    else if (names.length === 2) text = names[0] + " and " + names[1] + " are typing…";
    else if (names.length > 2) text = names.length + " people are typing…";
    if (node.textContent !== text) node.textContent = text;
    node.classList.toggle("active", names.length > 0);
  }
  setInterval(function () { if (typers.size) renderTyping(); }, 500);
  function sendTyping() {
    var now = Date.now();
    if (!room || now - lastTypingSent < TYPING_SEND_EVERY_MS) return;
    lastTypingSent = now;
    client.publish(room, { room: room, name: me.name, userId: me.userId }, { event: "typing", ephemeral: true, queue: false })
      .catch(function () { /* typing hints are best effort */ });
  }

  // ------------------------------------------------------------------------------------------------------------
  // Lobby
  function loadLobby() {
    var mine = ++lobbyEpoch;
    lobbyBuffer = [];
    fetch("/api/topics", { cache: "no-store" })
      .then(function (res) { if (!res.ok) throw new Error("HTTP " + res.status); return res.json(); })
      .then(function (body) {
        var list = (body.topics || []).filter(function (t) { return t.topic.charAt(0) !== "$"; }).slice(0, 200);
        return Promise.all(list.map(function (t) {
          return fetch("/api/topics/" + encodeURIComponent(t.topic), { cache: "no-store" })
            .then(function (r) { return r.ok ? r.json() : null; })
            .catch(function () { return null; })
            .then(function (d) {
              return { topic: t.topic, members: d && d.members ? d.members.length : t.subscribers || 0, asOf: d ? d.presenceAsOf || null : null,
                lastEventId: (d && d.lastEventId) || t.lastEventId || null, historySize: (d && d.historySize) || t.historySize || 0 };
            });
        }));
      })
      .then(function (list) {
        if (mine !== lobbyEpoch) return;
        rooms = new Map();
        list.forEach(function (r) { rooms.set(r.topic, r); });
        var buffered = lobbyBuffer || [];
        lobbyBuffer = null;
        buffered.forEach(applyLobby);
        renderLobby();
      })
      .catch(function () { if (mine === lobbyEpoch) lobbyBuffer = null; });
  }
  var lobbyEpoch = 0;
  // Rooms that only gained history (no presence change) show up on the next refresh.
  setInterval(function () { if (!room && !document.hidden && client.state().state === "open") loadLobby(); }, 20000);
  function lobbyPresence(ev) {
    if (lobbyBuffer) { lobbyBuffer.push(ev); return; }
    applyLobby(ev);
    renderLobby();
  }
  function applyLobby(ev) {
    var d = ev.data;
    if (!d || typeof d.topic !== "string" || d.topic.charAt(0) === "$") return;
    var r = rooms.get(d.topic);
    if (r && r.asOf != null && ev.id != null && cmp(ev.id, r.asOf) <= 0) return;
    if (!r) { r = { topic: d.topic, members: 0, asOf: null, lastEventId: null, historySize: 0 }; rooms.set(d.topic, r); }
    if (typeof d.members === "number") r.members = d.members;
    r.asOf = ev.id || r.asOf;
  }
  function renderLobby() {
    var list = $("lobby-list");
    var arr = Array.from(rooms.values()).sort(function (a, b) {
      return b.members - a.members || (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0);
    });
    list.textContent = "";
    arr.forEach(function (r) {
      var here = r.members === 1 ? "1 member" : r.members + " members";
      var btn = el("button", { type: "button", className: "room-row", "data-testid": "lobby-row", "data-room": r.topic,
        "aria-label": "Enter " + r.topic + ", " + here + (r.topic === room ? ", current room" : "") }, [
        el("span", { className: "room-icon", "aria-hidden": "true", text: "#" }),
        el("span", { className: "room-name", "data-testid": "lobby-room", text: r.topic }),
        el("span", { className: "room-meta muted small", text: r.historySize ? r.historySize + " in history" : "" }),
        el("span", { className: "room-count" + (r.members ? " live" : ""), "data-testid": "lobby-count", "data-count": String(r.members), text: r.members + " online", title: here }),
      ]);
      btn.addEventListener("click", function () { enter(r.topic); });
      list.appendChild(el("li", null, [btn]));
    });
    $("lobby-empty").hidden = arr.length > 0;
    var live = arr.filter(function (r) { return r.members > 0; }).length;
    $("lobby-summary").textContent = arr.length ? arr.length + (arr.length === 1 ? " room" : " rooms") + ", " + live + " live" : "";
  }

  // ------------------------------------------------------------------------------------------------------------
  // Notifications
  function notify(title, text, type, toast, id) {
    var list = $("notification-list");
    var item = el("li", { className: "notification", "data-testid": "notification", "data-type": type, "data-id": id || null }, [
      el("div", { className: "notification-head" }, [
        el("strong", { text: title }),
        el("time", { className: "muted small", text: timeText(Date.now()) }),
      ]),
      el("p", { className: "notification-text", "data-testid": "notification-text", text: text }),
    ]);
    list.insertBefore(item, list.firstChild);
    while (list.children.length > MAX_NOTIFICATIONS) list.removeChild(list.lastChild);
    $("notifications-empty").hidden = true;
    if (!toast) return;
    var close = el("button", { type: "button", className: "toast-close", "aria-label": "Dismiss notification", text: "×" });
    var t = el("div", { className: "toast", "data-testid": "toast", "data-type": type }, [
      bell(),
      el("div", { className: "toast-body" }, [el("strong", { text: title }), el("p", { "data-testid": "toast-text", text: text })]),
      close,
    ]);
    var remove = function () { if (t.parentNode) t.parentNode.removeChild(t); };
    close.addEventListener("click", remove);
    setTimeout(remove, TOAST_MS);
    var toasts = $("toasts");
    toasts.appendChild(t);
    while (toasts.children.length > 4) toasts.removeChild(toasts.firstChild);
  }
  function bell() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("class", "toast-icon");
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M12 3a6 6 0 0 0-6 6v3.6L4.3 15.4A1 1 0 0 0 5.2 17h13.6a1 1 0 0 0 .9-1.6L18 12.6V9a6 6 0 0 0-6-6zm-2.5 15.5a2.5 2.5 0 0 0 5 0z");
    path.setAttribute("fill", "currentColor");
    svg.appendChild(path);
    return svg;
  }
  $("clear-notifications").addEventListener("click", function () {
    $("notification-list").textContent = "";
    $("notifications-empty").hidden = false;
  });

  // ------------------------------------------------------------------------------------------------------------
  // Views and navigation: #/ is the lobby, #/room/<room> a room.
  function roomFromHash() {
    var m = /^#\/room\/(.+)$/.exec(location.hash);
    if (!m) return null;
    try { return decodeURIComponent(m[1]); } catch (e) { return null; }
  }
  function enter(r) {
    if (!validName(me.name)) {
      var name = $("name-input").value.trim();
      if (!validName(name)) { showJoinError("Pick a name first (1–64 characters)."); $("name-input").focus(); return; }
      setName(name);
    }
    location.hash = "#/room/" + encodeURIComponent(r);
  }
  function setName(name) {
    me.name = name;
    store("eb.name", name);
    client.setName(name);
    $("me").hidden = false;
    $("me-name").textContent = name;
    var a = avatar(name, "small");
    var old = $("me-avatar");
    a.setAttribute("data-testid", "me-avatar");
    old.parentNode.replaceChild(a, old);
  }
  function showJoinError(text) {
    var e = $("join-error");
    e.textContent = text;
    e.hidden = !text;
  }
  var routed = false;
  function route() {
    var r = roomFromHash();
    if (r && (!validRoom(r) || !validName(me.name))) {
      if (validRoom(r)) $("room-input").value = r;
      r = null;
      if (location.hash !== "#/") history.replaceState(null, "", "#/");
    }
    if (routed && r === room) return;
    routed = true;
    epoch++;
    room = r;
    messages = new Map();
    pending = new Map();
    members = new Map();
    presenceAsOf = null;
    presenceBuffer = null;
    typers = new Map();
    $("message-list").textContent = "";
    $("member-list").textContent = "";
    renderTyping();
    renderEmpty();
    $("lobby").hidden = !!room;
    $("room").hidden = !room;
    $("members-panel").hidden = !room;
    document.body.classList.toggle("in-room", !!room);
    if (room) {
      $("room-title").textContent = room;
      $("room-summary").textContent = "";
      unread = 0;
      renderTitle();
      client.setTopics([room, "$presence/**"], { since: "0" });
      $("composer-input").focus();
    } else {
      unread = 0;
      renderTitle();
      client.setTopics(["$presence/**"]);
      renderLobby();
      if (!me.name) $("name-input").focus();
    }
  }

  $("join-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var name = $("name-input").value.trim();
    var r = $("room-input").value.trim();
    if (!validName(name)) { showJoinError("Pick a name of 1–64 characters, without control characters."); $("name-input").focus(); return; }
    if (!validRoom(r)) { showJoinError("Room names use letters, digits and . _ - : / @ (no spaces, not starting with $)."); $("room-input").focus(); return; }
    if (r.charAt(0) === "$") { showJoinError("Rooms starting with $ are reserved."); return; }
    showJoinError("");
    setName(name);
    enter(r);
  });
  $("leave-button").addEventListener("click", function () { location.hash = "#/"; });
  $("composer").addEventListener("submit", function (e) {
    e.preventDefault();
    var input = $("composer-input");
    var text = input.value.replace(/\s+$/, "");
    if (!text.trim() || !room) return;
    send(text);
    input.value = "";
    autosize(input);
  });
  $("composer-input").addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("composer-input").addEventListener("input", function (e) {
    autosize(e.target);
    if (e.target.value.trim()) sendTyping();
  });
  function autosize(t) {
    t.style.height = "auto";
    t.style.height = Math.min(t.scrollHeight, 160) + "px";
  }
  window.addEventListener("hashchange", route);
  // broker.js hands its connection over when the page is hidden away; a page restored from the back-forward
  // cache starts afresh.
  window.addEventListener("pageshow", function (e) { if (e.persisted) location.reload(); });

  if (me.name) { $("name-input").value = me.name; setName(me.name); }
  route();
})();
