// The dashboard's live event pane: the account's events over the websocket stream (/ws/events).
// It asks the portal for a fresh login token per connection (POST, CSRF-checked), shows the latest events from
// the API, then streams from the newest one it showed; after a drop it reconnects with the last event id it
// saw, so the server replays what happened in between before live events resume.
(function () {
  "use strict";
  var pane = document.querySelector("[data-live-events]");
  if (!pane || !window.WebSocket || !window.fetch) return;

  var SHOWN = 20;
  var list = pane.querySelector("[data-live-list]");
  var empty = pane.querySelector("[data-live-empty]");
  var statusBadge = pane.querySelector("[data-live-status]");
  var detailUrl = pane.getAttribute("data-event-url");
  var placeholder = "00000000-0000-0000-0000-000000000000";
  var lastEventId = null;
  var historyLoaded = false;
  var attempt = 0;

  function setStatus(state, text, badge) {
    pane.setAttribute("data-state", state);
    statusBadge.textContent = text;
    statusBadge.className = "badge " + badge;
  }

  function describe(event) {
    var data = event.data || {};
    if (data.object && data.object.repr) return data.object.repr;
    return event.object.type + " " + event.object.id;
  }

  function show(event) {
    // A resume may repeat what the history already showed; only the shown items need checking.
    if (list.querySelector('[data-event-id="' + event.id + '"]')) return;
    var item = document.createElement("li");
    item.setAttribute("data-event-id", event.id);
    var type = document.createElement("a");
    type.className = "action";
    type.href = detailUrl.replace(placeholder, event.id);
    type.textContent = event.type;
    var object = document.createElement("span");
    object.className = "timeline-object";
    object.textContent = describe(event);
    var when = document.createElement("time");
    when.className = "muted small";
    when.dateTime = event.occurred_at;
    when.title = event.occurred_at;
    when.textContent = new Date(event.occurred_at).toLocaleTimeString();
    item.append(type, object, when);
    list.insertBefore(item, list.firstChild);
    while (list.children.length > SHOWN) list.removeChild(list.lastChild);
    empty.hidden = true;
  }

  function retry() {
    attempt += 1;
    setStatus("offline", "Reconnecting…", "badge-expired");
    // 1, 2, 4 ... 30 seconds, with jitter so a restarted server is not hit by every tab at once.
    var delay = Math.min(30000, 1000 * Math.pow(2, attempt - 1)) * (0.75 + Math.random() / 2);
    setTimeout(connect, delay);
  }

  function loadHistory(token) {
    if (historyLoaded) return Promise.resolve();
    return fetch(pane.getAttribute("data-history-url"), {headers: {"Authorization": "Bearer " + token}})
      .then(function (response) { return response.ok ? response.json() : {results: []}; })
      .then(function (page) {
        historyLoaded = true;
        var events = page.results || [];
        for (var i = events.length - 1; i >= 0; i--) show(events[i]);
        if (events.length && !lastEventId) lastEventId = events[0].id;
      });
  }

  function open(token) {
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    var socket = new WebSocket(scheme + "//" + window.location.host + "/ws/events");
    socket.onopen = function () {
      var auth = {type: "auth", payload: token, subscriptions: [{event_types: ["*"]}]};
      if (lastEventId) auth.last_event_id = lastEventId;
      socket.send(JSON.stringify(auth));
    };
    socket.onmessage = function (message) {
      var body = JSON.parse(message.data);
      if (body.type === "auth") {
        attempt = 0;
        setStatus("live", "Live", "badge-active");
      } else if (body.type === "event") {
        lastEventId = body.event.id;
        show(body.event);
      }
    };
    socket.onclose = function (close) {
      if (close.code === 4003) {
        setStatus("stopped", "Account suspended", "badge-revoked");
        return;
      }
      // 4410: the last id is past retention; continue from the live stream.
      if (close.code === 4410) lastEventId = null;
      retry();
    };
  }

  function connect() {
    setStatus("connecting", "Connecting…", "badge-muted");
    fetch(pane.getAttribute("data-token-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: {"X-CSRFToken": pane.getAttribute("data-csrf")}
    })
      .then(function (response) {
        if (response.status === 403) {
          // A suspended account (or a seat that no longer allows it): retrying will not help.
          setStatus("stopped", "Unavailable", "badge-revoked");
          return null;
        }
        if (!response.ok) throw new Error("token " + response.status);
        return response.json();
      })
      .then(function (body) {
        if (body) return loadHistory(body.token).then(function () { open(body.token); });
      })
      .catch(retry);
  }

  connect();
})();
