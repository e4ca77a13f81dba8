// Live view: the table of calls in progress, replaced on each server-sent event. All times are UTC,
// as the server writes them; "checked" events keep the clock going while nothing changes.
(function () {
  "use strict";
  var table = document.getElementById("live");
  var status = document.getElementById("live-status");
  var announce = document.getElementById("live-announce");
  if (!table || !window.EventSource) { return; }
  var body = table.querySelector("tbody");
  var known = null;
  function cell(row, text) { var td = document.createElement("td"); td.textContent = text; row.appendChild(td); return td; }
  function utcNow() { return new Date().toISOString().slice(11, 19) + " UTC"; }
  function checked(at) { status.textContent = "Live, checked " + (at ? at.slice(11) : utcNow()) + ". All times UTC."; }
  var source = new EventSource(table.getAttribute("data-stream"));
  source.addEventListener("calls", function (ev) {
    var calls = JSON.parse(ev.data);
    body.textContent = "";
    if (!calls.length) {
      var empty = document.createElement("tr");
      var td = cell(empty, "No call in progress.");
      td.colSpan = 6; td.className = "empty";
      body.appendChild(empty);
    }
    var ids = {};
    calls.forEach(function (c) {
      ids[c.id] = true;
      var row = document.createElement("tr");
      var link = document.createElement("a");
      link.href = "/calls/" + encodeURIComponent(c.id);
      link.textContent = c.id;
      cell(row, "").appendChild(link);
      cell(row, c.started_at).className = "time";
      cell(row, c.node); cell(row, c.last_text); cell(row, c.intent); cell(row, c.emotion);
      body.appendChild(row);
    });
    if (known !== null && announce) {
      var started = calls.filter(function (c) { return !known[c.id]; }).length;
      var ended = Object.keys(known).filter(function (id) { return !ids[id]; }).length;
      var parts = [];
      if (started) { parts.push(started + (started === 1 ? " call started" : " calls started")); }
      if (ended) { parts.push(ended + (ended === 1 ? " call ended" : " calls ended")); }
      if (parts.length) { announce.textContent = parts.join(", ") + "; " + calls.length + " in progress."; }
    }
    known = ids;
    checked(null);
  });
  source.addEventListener("checked", function (ev) { checked(JSON.parse(ev.data)); });
  source.onerror = function () { status.textContent = "Connection lost; retrying…"; };
})();
