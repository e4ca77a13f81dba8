// Live view: the table of calls in progress, replaced on each server-sent event. All times are UTC,
// as the server writes them; "checked" events keep the clock going while nothing changes. Each call's
// elapsed time ticks here every second (from its start and the server's clock, sent as "now" events); an
// upset caller's row is marked in words ("Upset", with the negativity) as well as colour, and announced once.
(function () {
  "use strict";
  var table = document.getElementById("live");
  var status = document.getElementById("live-status");
  var announce = document.getElementById("live-announce");
  if (!table || !window.EventSource) { return; }
  var body = table.querySelector("tbody");
  var known = null;
  var upsetSeen = {};
  var skewMs = 0;  // the server's clock minus this browser's
  function cell(row, text) { var td = document.createElement("td"); td.textContent = text; row.appendChild(td); return td; }
  function utcNow() { return new Date().toISOString().slice(11, 19) + " UTC"; }
  function checked(at) { status.textContent = "Live, checked " + (at ? at.slice(11) : utcNow()) + ". All times UTC."; }
  function two(n) { return (n < 10 ? "0" : "") + n; }
  function elapsed(startedMs) {
    var s = Math.max(0, Math.floor((Date.now() + skewMs - startedMs) / 1000));
    var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
    return (h ? h + ":" + two(m) : String(m)) + ":" + two(s % 60);
  }
  function tick() {
    Array.prototype.forEach.call(body.querySelectorAll("td.elapsed[data-started]"), function (td) {
      td.textContent = elapsed(Number(td.getAttribute("data-started")));
    });
  }
  function emotionCell(row, c) {
    var td = cell(row, c.emotion);
    if (c.negativity !== null && c.negativity !== undefined) { td.textContent = (c.emotion || "—") + " (" + c.negativity.toFixed(2) + ")"; }
    if (c.upset) {
      var flag = document.createElement("strong");
      flag.className = "badge upset-badge";
      flag.textContent = "⚠ Upset";
      td.insertBefore(document.createTextNode(" "), td.firstChild);
      td.insertBefore(flag, td.firstChild);
    }
  }
  function listenCell(row, c) {
    var td = cell(row, "");
    if (!c.listen) {
      td.textContent = "—";
      var why = document.createElement("span");
      why.className = "visually-hidden";
      why.textContent = "no live audio from this call's process";
      td.appendChild(why);
      return;
    }
    var button = document.createElement("button");
    button.type = "button";
    button.className = "listen";
    button.setAttribute("data-call", c.id);
    var on = window.ivrListening && window.ivrListening() === c.id;
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.textContent = on ? "Stop listening" : "Listen";
    td.appendChild(button);
  }
  function render(calls) {
    body.textContent = "";
    if (!calls.length) {
      var empty = document.createElement("tr");
      var td = cell(empty, "No call in progress.");
      td.colSpan = 8; td.className = "empty";
      body.appendChild(empty);
    }
    calls.forEach(function (c) {
      var row = document.createElement("tr");
      row.setAttribute("data-call", c.id);
      if (c.upset) { row.className = "upset"; }
      var link = document.createElement("a");
      link.href = "/calls/" + encodeURIComponent(c.id);
      link.textContent = c.id;
      cell(row, "").appendChild(link);
      cell(row, c.started_at).className = "time";
      var since = cell(row, elapsed(c.started_ms));
      since.className = "elapsed";
      since.setAttribute("data-started", String(c.started_ms));
      cell(row, c.node); cell(row, c.last_text); cell(row, c.intent);
      emotionCell(row, c);
      listenCell(row, c);
      body.appendChild(row);
    });
  }
  function announceChanges(calls) {
    var ids = {};
    calls.forEach(function (c) { ids[c.id] = true; });
    var parts = [];
    if (known !== null) {
      var started = calls.filter(function (c) { return !known[c.id]; }).length;
      var ended = Object.keys(known).filter(function (id) { return !ids[id]; }).length;
      if (started) { parts.push(started + (started === 1 ? " call started" : " calls started")); }
      if (ended) { parts.push(ended + (ended === 1 ? " call ended" : " calls ended")); }
    }
    calls.forEach(function (c) {
      if (c.upset && !upsetSeen[c.id]) {
        upsetSeen[c.id] = true;
        parts.unshift("Caller upset on call " + c.id + (c.negativity !== null ? " (negativity " + c.negativity.toFixed(2) + ")" : ""));
      }
    });
    if (parts.length && announce) { announce.textContent = parts.join("; ") + "; " + calls.length + " in progress."; }
    known = ids;
  }
  var source = new EventSource(table.getAttribute("data-stream"));
  source.addEventListener("calls", function (ev) {
    var calls = JSON.parse(ev.data);
    render(calls);
    announceChanges(calls);
    checked(null);
  });
  source.addEventListener("checked", function (ev) { checked(JSON.parse(ev.data)); });
  source.addEventListener("now", function (ev) { skewMs = Number(ev.data) - Date.now(); tick(); });
  source.onerror = function () { status.textContent = "Connection lost; retrying…"; };
  setInterval(tick, 1000);
})();
