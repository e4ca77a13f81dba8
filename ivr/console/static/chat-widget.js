/* The ivr chat widget: one script tag on any page, plain JS, no framework, no inline code or styles.
 *
 *   <script src="https://console.example/static/chat-widget.js" data-title="Example Bank" defer></script>
 *
 * data-title: the panel's title (default "Chat"); data-open="true": open at load; data-label: the launcher's
 * text. It talks to the console it was loaded from over WS /chat/ws (the JSON protocol in the README,
 * "Text chat") and loads its stylesheet from there too, so a page with a Content-Security-Policy allows
 * that origin in script-src, style-src and connect-src. Texts are shown with textContent, never as HTML.
 * A reload of the page resumes the chat (its secret is kept in sessionStorage for this tab only).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.ivrChatWidget) { return; }
  var base = new URL(script.src, window.location.href);
  var origin = base.origin;
  var conf = script.dataset || {};
  var title = conf.title || "Chat";
  var storeKey = "ivr-chat:" + origin;
  var RECONNECT_MS = 2000;

  var ws = null;
  var seq = 0;
  var ended = false;
  var opened = false;
  var ui = {};

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text) { node.textContent = text; }
    return node;
  }

  function saved() {
    try { return JSON.parse(window.sessionStorage.getItem(storeKey) || "null"); } catch (e) { return null; }
  }

  function save(session) {
    try {
      if (session) { window.sessionStorage.setItem(storeKey, JSON.stringify({session: session})); }
      else { window.sessionStorage.removeItem(storeKey); }
    } catch (e) { /* storage off: no resume after a reload */ }
  }

  function build() {
    var css = el("link");
    css.rel = "stylesheet";
    css.href = origin + "/static/chat-widget.css";
    document.head.appendChild(css);
    var root = el("div", "ivr-chat");
    ui.launcher = el("button", "ivr-chat-launcher", conf.label || "Chat with us");
    ui.launcher.type = "button";
    ui.launcher.setAttribute("aria-expanded", "false");
    ui.panel = el("section", "ivr-chat-panel");
    ui.panel.hidden = true;
    ui.panel.setAttribute("aria-label", title);
    var head = el("header", "ivr-chat-head");
    head.appendChild(el("h2", "ivr-chat-title", title));
    ui.close = el("button", "ivr-chat-close", "\u00d7");
    ui.close.type = "button";
    ui.close.setAttribute("aria-label", "Close the chat");
    head.appendChild(ui.close);
    ui.log = el("div", "ivr-chat-log");
    ui.log.setAttribute("role", "log");
    ui.log.setAttribute("aria-live", "polite");
    ui.log.setAttribute("aria-label", "Conversation");
    ui.log.tabIndex = 0;  // a long conversation scrolls: the keyboard must reach it (arrow keys, Page Up)
    ui.form = el("form", "ivr-chat-form");
    ui.input = el("input", "ivr-chat-input");
    ui.input.type = "text";
    ui.input.maxLength = 1000;
    ui.input.autocomplete = "off";
    ui.input.setAttribute("aria-label", "Your message");
    ui.input.placeholder = "Type a message";
    ui.send = el("button", "ivr-chat-send", "Send");
    ui.send.type = "submit";
    ui.form.appendChild(ui.input);
    ui.form.appendChild(ui.send);
    ui.restart = el("button", "ivr-chat-restart", "Start a new chat");
    ui.restart.type = "button";
    ui.restart.hidden = true;
    ui.panel.appendChild(head);
    ui.panel.appendChild(ui.log);
    ui.panel.appendChild(ui.form);
    ui.panel.appendChild(ui.restart);
    root.appendChild(ui.launcher);
    root.appendChild(ui.panel);
    document.body.appendChild(root);
    ui.launcher.addEventListener("click", open);
    ui.close.addEventListener("click", close);
    ui.form.addEventListener("submit", submit);
    ui.restart.addEventListener("click", restart);
    ui.panel.addEventListener("keydown", function (event) { if (event.key === "Escape") { close(); } });
  }

  function line(kind, text) {
    var item = el("p", "ivr-chat-msg " + kind, text);
    ui.log.appendChild(item);
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  function notice(text) { line("notice", text); }

  function setEnabled(on) {
    ui.input.disabled = !on;
    ui.send.disabled = !on;
  }

  function connect() {
    var socket = new WebSocket(origin.replace(/^http/, "ws") + "/chat/ws");
    ws = socket;
    socket.addEventListener("open", function () {
      var old = saved();
      var first = old && old.session ? {type: "resume", session: old.session, after: 0} : {type: "start"};
      if (first.type === "resume") { ui.log.textContent = ""; seq = 0; }
      socket.send(JSON.stringify(first));
    });
    socket.addEventListener("message", function (event) {
      var msg;
      if (ws !== socket) { return; }
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      receive(msg);
    });
    socket.addEventListener("close", function () {
      if (ws !== socket) { return; }
      ws = null;
      setEnabled(false);
      if (!ended && opened) { window.setTimeout(function () { if (!ws && !ended) { connect(); } }, RECONNECT_MS); }
    });
  }

  function receive(msg) {
    if (typeof msg.seq === "number") {
      if (msg.seq <= seq) { return; }
      seq = msg.seq;
    }
    if (msg.type === "started") {
      save(msg.session);
      setEnabled(true);
      ui.input.focus();
    } else if (msg.type === "message") {
      line(msg.from === "user" ? "user" : "agent", String(msg.text || ""));
    } else if (msg.type === "handoff") {
      notice("We have passed your chat to our team.");
    } else if (msg.type === "ended") {
      finish();
    } else if (msg.type === "error") {
      if (msg.code === "no_session") { save(null); finish(); return; }
      notice(String(msg.message || "Something went wrong."));
    }
  }

  function finish() {
    ended = true;
    save(null);
    setEnabled(false);
    notice("The chat has ended.");
    ui.restart.hidden = false;
  }

  function submit(event) {
    event.preventDefault();
    var text = ui.input.value.trim();
    if (!text || !ws || ws.readyState !== WebSocket.OPEN) { return; }
    ws.send(JSON.stringify({type: "message", text: text}));
    ui.input.value = "";
  }

  function open() {
    ui.panel.hidden = false;
    ui.launcher.hidden = true;
    ui.launcher.setAttribute("aria-expanded", "true");
    opened = true;
    if (!ws && !ended) { setEnabled(false); connect(); }
    ui.input.focus();
  }

  function close() {
    ui.panel.hidden = true;
    ui.launcher.hidden = false;
    ui.launcher.setAttribute("aria-expanded", "false");
    ui.launcher.focus();
  }

  function restart() {
    ended = false;
    seq = 0;
    ui.log.textContent = "";
    ui.restart.hidden = true;
    var old = ws;
    ws = null;
    if (old) { old.close(); }
    connect();
  }

  function init() {
    build();
    setEnabled(false);
    window.ivrChatWidget = {open: open, close: close};
    if (conf.open === "true" || saved()) { open(); }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); }
  else { init(); }
}());
