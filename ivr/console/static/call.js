// Call page: waveform from downsampled peaks, click-to-seek (or arrow keys) on the waveform and the
// transcript, the line being played highlighted; a call still in progress gets its new turns as said.
(function () {
  "use strict";
  var player = document.getElementById("player");
  var canvas = document.getElementById("waveform");
  var transcript = document.getElementById("transcript");
  var lines = Array.prototype.slice.call(document.querySelectorAll(".turn[data-start]"));
  var peaks = null;

  function clock(s) { s = Math.max(0, s); var m = Math.floor(s / 60); var r = (s % 60).toFixed(1); return m + ":" + (r < 10 ? "0" : "") + r; }

  function draw() {
    if (!canvas || !peaks) { return; }
    var ctx = canvas.getContext("2d");
    var w = canvas.width, h = canvas.height, mid = h / 2;
    ctx.clearRect(0, 0, w, h);
    var colors = ["#2b6a9e", "#5b6673"];
    peaks.peaks.forEach(function (channel, ch) {
      var n = channel.length;
      if (!n) { return; }
      ctx.fillStyle = colors[ch % colors.length];
      for (var x = 0; x < w; x++) {
        var v = channel[Math.min(n - 1, Math.floor(x * n / w))];
        var bar = Math.max(1, v * (mid - 2));
        if (peaks.peaks.length === 1) { ctx.fillRect(x, mid - bar, 1, 2 * bar); }
        else if (ch === 0) { ctx.fillRect(x, mid - bar, 1, bar); }
        else { ctx.fillRect(x, mid, 1, bar); }
      }
    });
    ctx.fillStyle = "#ccc";
    ctx.fillRect(0, mid, w, 1);
    if (player && peaks.duration_s > 0) {
      ctx.fillStyle = "#b00020";
      ctx.fillRect(Math.round(w * player.currentTime / peaks.duration_s), 0, 2, h);
      canvas.setAttribute("aria-valuenow", player.currentTime.toFixed(1));
      canvas.setAttribute("aria-valuetext", clock(player.currentTime) + " of " + clock(peaks.duration_s));
    }
  }

  function seek(seconds) {
    if (!player) { return; }
    var end = peaks ? peaks.duration_s : (player.duration || seconds);
    player.currentTime = Math.max(0, Math.min(seconds, end));
    var playing = player.play();
    if (playing && playing.catch) { playing.catch(function () {}); }
    draw();
  }

  if (canvas) {
    fetch(canvas.getAttribute("data-peaks"), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        peaks = data;
        if (data) { canvas.setAttribute("aria-valuemax", data.duration_s.toFixed(1)); }
        canvas.setAttribute("data-ready", data ? "1" : "0");
        draw();
      });
    canvas.addEventListener("click", function (ev) {
      if (!peaks) { return; }
      var rect = canvas.getBoundingClientRect();
      seek(peaks.duration_s * (ev.clientX - rect.left) / rect.width);
    });
    canvas.addEventListener("keydown", function (ev) {
      if (!peaks || !player) { return; }
      var steps = { ArrowRight: 5, ArrowUp: 5, ArrowLeft: -5, ArrowDown: -5, PageUp: 30, PageDown: -30 };
      var t = player.currentTime;
      if (ev.key in steps) { seek(t + steps[ev.key]); }
      else if (ev.key === "Home") { seek(0); }
      else if (ev.key === "End") { seek(peaks.duration_s); }
      else if (ev.key === " " || ev.key === "Enter") { if (player.paused) { seek(t); } else { player.pause(); } }
      else { return; }
      ev.preventDefault();
    });
  }
  function bind(line) {
    function go() { seek(parseFloat(line.getAttribute("data-start"))); }
    line.addEventListener("click", go);
    line.addEventListener("keydown", function (ev) { if (ev.key === "Enter") { go(); } });
  }
  lines.forEach(bind);
  if (player) {
    player.addEventListener("timeupdate", function () {
      var t = player.currentTime, current = null;
      lines.forEach(function (line) { if (parseFloat(line.getAttribute("data-start")) <= t) { current = line; } });
      lines.forEach(function (line) {
        var on = line === current;
        line.classList.toggle("playing", on);
        if (on) { line.setAttribute("aria-current", "true"); } else { line.removeAttribute("aria-current"); }
      });
      draw();
    });
  }

  // A call in progress: poll for its new turns; once it has ended, load the full page (recording, plot).
  var note = document.getElementById("live-note");
  if (note && transcript) {
    var progress = note.getAttribute("data-progress");
    var tag = function (li, text) { var s = document.createElement("span"); s.className = "tag"; s.textContent = text; li.appendChild(s); };
    var poll = function () {
      var after = transcript.querySelectorAll("li.turn").length;
      fetch(progress + "?after=" + after, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) { setTimeout(poll, 5000); return; }
          var empty = document.getElementById("no-turns");
          if (data.turns.length && empty) { empty.remove(); }
          data.turns.forEach(function (t) {
            var li = document.createElement("li");
            li.className = "turn " + t.speaker + " new";
            li.setAttribute("data-start", (t.start_ms / 1000).toFixed(3));
            li.tabIndex = 0;
            [["time", t.clock], ["speaker", t.speaker], ["text", t.text]].forEach(function (p) {
              var s = document.createElement("span"); s.className = p[0]; s.textContent = p[1]; li.appendChild(s);
            });
            if (t.intent) { tag(li, "intent: " + t.intent); }
            if (t.emotion) { tag(li, "emotion: " + t.emotion); }
            transcript.appendChild(li);
          });
          var flag = document.getElementById("upset-flag");
          var nowUpset = data.upset && flag && flag.hidden;
          if (nowUpset) { flag.hidden = false; }
          if (data.turns.length || nowUpset) {
            note.textContent = "This call is in progress: " + data.turns.length + " new line(s) in the transcript." +
              (nowUpset ? " The caller is upset." : "");
          }
          if (data.ended) {
            note.textContent = "The call has ended (" + data.outcome + "); loading the full record…";
            setTimeout(function () { window.location.reload(); }, 1500);
            return;
          }
          setTimeout(poll, 2000);
        }, function () { setTimeout(poll, 5000); });
    };
    setTimeout(poll, 2000);
  }
})();
