// Live view: the table of calls in progress, replaced on each server-sent event.
(function () {
  "use strict";
  var table = document.getElementById("live");
  var status = document.getElementById("live-status");
  if (!table || !window.EventSource) { return; }
  var body = table.querySelector("tbody");
  function cell(row, text) { var td = document.createElement("td"); td.textContent = text; row.appendChild(td); return td; }
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
    calls.forEach(function (c) {
      var row = document.createElement("tr");
      var link = document.createElement("a");
      link.href = "/calls/" + encodeURIComponent(c.id);
      link.textContent = c.id;
      cell(row, "").appendChild(link);
      cell(row, c.started_at); cell(row, c.node); cell(row, c.last_text); cell(row, c.intent); cell(row, c.emotion);
      body.appendChild(row);
    });
    status.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
  });
  source.onerror = function () { status.textContent = "Connection lost; retrying…"; };
})();
