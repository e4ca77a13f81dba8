// Listen in to a live call: a "Listen" button (class "listen", data-call) on the live board and on a live
// call's page opens a WebSocket to /api/live/<id>/listen, sends the session's CSRF token, and plays the PCM16
// it receives with the Web Audio API, each chunk scheduled right after the one before. One call at a time;
// the button (aria-pressed) and the status line (#listen-status, aria-live) say what is happening. The status
// element keeps the figures (data-bytes, data-samples, data-peak) of what arrived and was played.
(function () {
  "use strict";
  var status = document.getElementById("listen-status");
  if (!status || !window.WebSocket) { return; }
  var AudioCtx = window.AudioContext || window.webkitAudioContext;
  var MAX_AHEAD_S = 1.0;  // more audio queued than this (a burst after a stall): the queued audio is dropped
                          // and playing starts again from the newest, so the listener never falls behind
  var state = null;  // {id, socket, ctx, rate, next, sources, bytes, samples, peak, dropped}

  function csrf() {
    var input = document.querySelector("form.logout input[name=csrf]");
    return input ? input.value : "";
  }
  function say(text) { status.textContent = text; }
  function figures() {
    status.setAttribute("data-bytes", String(state ? state.bytes : 0));
    status.setAttribute("data-samples", String(state ? state.samples : 0));
    status.setAttribute("data-peak", String(state ? state.peak : 0));
    status.setAttribute("data-dropped", String(state ? state.dropped : 0));
  }
  function buttons() {
    Array.prototype.forEach.call(document.querySelectorAll("button.listen"), function (b) {
      var on = state !== null && b.getAttribute("data-call") === state.id;
      b.setAttribute("aria-pressed", on ? "true" : "false");
      b.textContent = on ? "Stop listening" : "Listen";
    });
  }
  function play(data) {
    var pcm = new Int16Array(data);
    state.bytes += data.byteLength;
    if (!state.rate || !pcm.length) { figures(); return; }
    var buffer = state.ctx.createBuffer(1, pcm.length, state.rate);
    var samples = buffer.getChannelData(0);
    for (var i = 0; i < pcm.length; i++) {
      samples[i] = pcm[i] / 32768;
      var level = Math.abs(pcm[i]);
      if (level > state.peak) { state.peak = level; }
    }
    var now = state.ctx.currentTime;
    if (state.next > now + MAX_AHEAD_S) {  // drop the oldest: what is queued and not yet heard
      state.sources.forEach(function (s) { s.stop(); });
      state.dropped += state.sources.length;
      state.sources = [];
    }
    if (state.next < now + 0.05 || !state.sources.length) { state.next = now + 0.1; }
    var source = state.ctx.createBufferSource();
    var mine = state;
    source.buffer = buffer;
    source.connect(state.ctx.destination);
    source.onended = function () { var i = mine.sources.indexOf(source); if (i >= 0) { mine.sources.splice(i, 1); } };
    state.sources.push(source);
    source.start(state.next);
    state.next += buffer.duration;
    state.samples += pcm.length;
    figures();
    say("Listening to call " + state.id + ": " + (state.samples / state.rate).toFixed(1) + " s heard.");
  }
  function stop(text) {
    if (state === null) { return; }
    var old = state;
    state = null;
    if (old.socket.readyState <= 1) { old.socket.close(1000); }
    old.ctx.close();
    buttons();
    say(text);
  }
  function start(id) {
    if (!AudioCtx) { say("This browser cannot play live audio (no Web Audio API)."); return; }
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/api/live/" + encodeURIComponent(id) + "/listen");
    socket.binaryType = "arraybuffer";
    state = { id: id, socket: socket, ctx: new AudioCtx(), rate: 0, next: 0, sources: [], bytes: 0, samples: 0, peak: 0,
              dropped: 0 };
    var mine = state;
    figures();
    buttons();
    say("Connecting to call " + id + "…");
    socket.onopen = function () { socket.send(JSON.stringify({ csrf: csrf() })); };
    socket.onmessage = function (ev) {
      if (state !== mine) { return; }
      if (typeof ev.data !== "string") { play(ev.data); return; }
      var msg = JSON.parse(ev.data);
      if (msg.type === "format") { state.rate = msg.rate; mine.ctx.resume(); }
      else if (msg.type === "ended") { stop("Call " + id + " has ended."); }
      else if (msg.type === "error") { stop("Cannot listen: " + msg.detail + "."); }
    };
    socket.onclose = function (ev) {
      if (state !== mine) { return; }
      stop(ev.code === 1008 || ev.code === 1006 ? "Listening was refused or the connection was lost." :
           "Stopped listening to call " + id + ".");
    };
  }
  document.addEventListener("click", function (ev) {
    var button = ev.target.closest ? ev.target.closest("button.listen") : null;
    if (!button) { return; }
    var id = button.getAttribute("data-call");
    var same = state !== null && state.id === id;
    stop("Stopped listening to call " + (state ? state.id : id) + ".");
    if (!same) { start(id); }
  });
  window.ivrListening = function () { return state ? state.id : null; };
  window.ivrListenAhead = function () { return state ? state.next - state.ctx.currentTime : null; };
})();
