// Call page: waveform from downsampled peaks, click-to-seek on the waveform and the transcript,
// the line being played highlighted.
(function () {
  "use strict";
  var player = document.getElementById("player");
  var canvas = document.getElementById("waveform");
  var lines = Array.prototype.slice.call(document.querySelectorAll(".turn[data-start]"));
  var peaks = null;

  function draw() {
    if (!canvas || !peaks) { return; }
    var ctx = canvas.getContext("2d");
    var w = canvas.width, h = canvas.height, mid = h / 2;
    ctx.clearRect(0, 0, w, h);
    var colors = ["#2b7bb9", "#7a8a99"];
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
      ctx.fillStyle = "#d62728";
      ctx.fillRect(Math.round(w * player.currentTime / peaks.duration_s), 0, 2, h);
    }
  }

  function seek(seconds) {
    if (!player) { return; }
    player.currentTime = seconds;
    var playing = player.play();
    if (playing && playing.catch) { playing.catch(function () {}); }
  }

  if (canvas) {
    fetch(canvas.getAttribute("data-peaks"), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { peaks = data; canvas.setAttribute("data-ready", data ? "1" : "0"); draw(); });
    canvas.addEventListener("click", function (ev) {
      if (!peaks) { return; }
      var rect = canvas.getBoundingClientRect();
      seek(peaks.duration_s * (ev.clientX - rect.left) / rect.width);
    });
  }
  lines.forEach(function (line) {
    function go() { seek(parseFloat(line.getAttribute("data-start"))); }
    line.addEventListener("click", go);
    line.addEventListener("keydown", function (ev) { if (ev.key === "Enter") { go(); } });
  });
  if (player) {
    player.addEventListener("timeupdate", function () {
      var t = player.currentTime, current = null;
      lines.forEach(function (line) { if (parseFloat(line.getAttribute("data-start")) <= t) { current = line; } });
      lines.forEach(function (line) { line.classList.toggle("playing", line === current); });
      draw();
    });
  }
})();
