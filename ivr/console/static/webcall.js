// The web call page: the microphone to the agent over WebRTC, the agent's voice back, the call's events
// (transcript, dialog state) from the data channel, a keypad that sends keys over it. Offer/answer is one
// POST with the whole offer (ICE gathered first). The agent's audio of the call is recorded in the page
// (MediaRecorder) and offered as a download when the call ends; `window.ivrWebcall.agentAudio()` gives it
// to automation (the console's browser tests).
(function () {
  "use strict";
  const root = document.getElementById("webcall");
  if (!root) { return; }
  const csrf = root.dataset.csrf;
  const iceServers = JSON.parse(root.dataset.ice || "[]");
  const callButton = document.getElementById("call-button");
  const hangupButton = document.getElementById("hangup-button");
  const status = document.getElementById("call-status");
  const transcript = document.getElementById("transcript");
  const partial = document.getElementById("partial");
  const audio = document.getElementById("agent-audio");
  const link = document.getElementById("agent-audio-link");
  const keys = Array.from(document.querySelectorAll("#keypad .key"));
  const GATHER_LIMIT_MS = 5000;
  let pc = null, channel = null, mic = null, recorder = null, chunks = [], recording = null, live = false;

  function setStatus(text) { status.textContent = text; }
  function setState(id, text) { document.getElementById(id).textContent = text; }

  function addLine(speaker, text) {
    const li = document.createElement("li");
    li.className = speaker;
    li.textContent = text;
    transcript.appendChild(li);
  }

  function show(message) {
    switch (message.type) {
      case "started": setState("state-call", message.call_id); setStatus("Connected: talk to the agent."); break;
      case "partial": partial.textContent = message.text; break;
      case "transcript": partial.textContent = ""; addLine("caller", message.text); break;
      case "said": addLine("agent", message.text); break;
      case "state": setState("state-node", message.node); break;
      case "listening": setState("state-listening", message.node); break;
      case "nlu": setState("state-intent", message.intent || message.faq || "-"); break;
      case "emotion": setState("state-emotion", message.label); break;
      case "reply": setState("state-latency", Math.round(message.latency_ms) + " ms"); break;
      case "ended": setState("state-outcome", message.outcome + (message.reason ? " (" + message.reason + ")" : "")); break;
      case "callback": setStatus("No agent can take the call now: an agent will call back."); break;
      case "bye":
        if (document.getElementById("state-outcome").textContent === "-") { setState("state-outcome", message.outcome); }
        finish(message.outcome === "error" ? "The call failed on the agent's side." : "The agent ended the call.");
        break;
      default: break;
    }
  }

  function record(stream) {
    if (typeof MediaRecorder === "undefined") { return; }
    chunks = [];
    try {
      recorder = new MediaRecorder(stream);
    } catch (err) {
      recorder = null;
      return;
    }
    recorder.ondataavailable = (e) => { if (e.data && e.data.size) { chunks.push(e.data); } };
    recorder.onstop = () => {
      recording = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
      link.href = URL.createObjectURL(recording);
      link.hidden = false;
    };
    recorder.start(500);
  }

  function gathered(connection) {
    if (connection.iceGatheringState === "complete") { return Promise.resolve(); }
    return new Promise((resolve) => {
      const done = () => { if (connection.iceGatheringState === "complete") { resolve(); } };
      connection.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, GATHER_LIMIT_MS);
    });
  }

  function finish(text) {
    if (!live) { return; }
    live = false;
    setStatus(text);
    if (recorder && recorder.state !== "inactive") { recorder.stop(); }
    if (mic) { mic.getTracks().forEach((t) => t.stop()); }
    if (pc) { setTimeout(() => pc.close(), 300); }
    callButton.disabled = false;
    hangupButton.disabled = true;
    keys.forEach((k) => { k.disabled = true; });
  }

  async function call() {
    callButton.disabled = true;
    transcript.textContent = "";
    ["state-call", "state-node", "state-listening", "state-intent", "state-emotion", "state-latency",
     "state-outcome"].forEach((id) => setState(id, "-"));
    link.hidden = true;
    recording = null;
    setStatus("Starting the microphone…");
    try {
      mic = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    } catch (err) {
      setStatus("No microphone: " + err.message);
      callButton.disabled = false;
      return;
    }
    live = true;
    pc = new RTCPeerConnection({ iceServers: iceServers });
    mic.getTracks().forEach((t) => pc.addTrack(t, mic));
    channel = pc.createDataChannel("events");
    channel.onmessage = (e) => { try { show(JSON.parse(e.data)); } catch (err) { /* not ours */ } };
    channel.onopen = () => { keys.forEach((k) => { k.disabled = false; }); };
    channel.onclose = () => finish("The call has ended.");
    pc.ontrack = (e) => {
      const stream = new MediaStream([e.track]);
      audio.srcObject = stream;
      record(stream);
    };
    pc.onconnectionstatechange = () => {
      if (pc && (pc.connectionState === "failed" || pc.connectionState === "closed")) { finish("The call has ended."); }
    };
    setStatus("Calling the agent… (the first call loads its models)");
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    let answer;
    try {
      const response = await fetch("/api/webcall/offer", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type }),
      });
      answer = await response.json();
      if (!response.ok) { throw new Error(answer.detail || response.statusText); }
    } catch (err) {
      finish("The call could not start: " + err.message);
      return;
    }
    await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
    hangupButton.disabled = false;
  }

  function hangUp() {
    if (channel && channel.readyState === "open") { channel.send(JSON.stringify({ type: "hangup" })); }
    finish("You hung up.");
  }

  function press(key) {
    if (channel && channel.readyState === "open") { channel.send(JSON.stringify({ type: "key", key: key })); }
  }

  function agentAudio() {
    if (!recording) { return Promise.resolve(null); }
    return new Promise((resolve) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
      reader.readAsDataURL(recording);
    });
  }

  callButton.addEventListener("click", call);
  hangupButton.addEventListener("click", hangUp);
  keys.forEach((k) => k.addEventListener("click", () => press(k.dataset.key)));
  window.ivrWebcall = { agentAudio: agentAudio };
}());
