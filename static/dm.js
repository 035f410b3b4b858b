// skydm DMs, progressive enhancement only: every page works without this
// file. It adds Enter-to-send, optimistic sending, live updates over
// Server-Sent Events, and marks a conversation read (POST) once it is
// seen. No framework, no eval, no inline handlers; markup is only ever
// inserted from server-rendered fragments, text via DOM APIs.
"use strict";
(function () {
  var d = document;
  var $ = function (s, r) { return (r || d).querySelector(s); };
  var list = $("#msgs"), form = $("#composer"), inbox = $("[data-testid=convo-list]"), readForm = $("#mark-read");
  var FAIL = "Not sent. Check your connection and try again.";

  // Tell the server our time zone, so times and day separators are local.
  try {
    var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (tz) d.cookie = "tz=" + encodeURIComponent(tz) + ";path=/;max-age=31536000;samesite=lax";
  } catch (e) { /* ignore */ }

  function frag(html) {
    var t = d.createElement("template");
    t.innerHTML = html; // server-rendered fragment (templ-escaped)
    return t.content.firstElementChild;
  }
  function byId(id) { return d.getElementById("m-" + id); }
  function nearEnd() { return innerHeight + scrollY >= d.body.scrollHeight - 150; }
  // The newest message sits at the end of the list, just above the sticky
  // composer; scrolled all the way down, the composer is in its own place
  // and covers nothing.
  function toEnd() { scrollTo(0, d.body.scrollHeight); }
  function textOf(el) { var t = el && $("[data-testid=message-text]", el); return t ? t.textContent : ""; }

  function setUnread(n) {
    if (typeof n !== "number") return;
    d.title = (n > 0 ? "(" + n + ") " : "") + d.title.replace(/^\(\d+\) /, "");
    var b = $("[data-testid=nav-unread]");
    if (b) { b.textContent = n > 99 ? "99+" : String(n); b.hidden = !n; }
  }

  function showError(msg) {
    var e = $("#composer-error");
    if (!e) return;
    e.textContent = msg || "";
    e.hidden = !msg;
  }

  // The list is no longer empty: drop its "No messages yet" line.
  function filled() { var e = $(".log > [data-testid=empty]"); if (e) e.remove(); }

  // Append a message from the server unless it is already on the page; an
  // own message replaces the pending bubble with the same text.
  function addMessage(html) {
    var el = frag(html);
    if (!el || !list || (el.id && d.getElementById(el.id))) return;
    var end = nearEnd();
    var pending = null;
    if (el.hasAttribute("data-own")) {
      list.querySelectorAll(".pending").forEach(function (p) {
        if (!pending && textOf(p) === textOf(el)) pending = p;
      });
    }
    if (pending) pending.replaceWith(el); else list.appendChild(el);
    filled();
    if (end) toEnd();
    if (!el.hasAttribute("data-own") && el.id) markRead(el.id.slice(2), true);
  }

  // Marking read is a POST (a GET never changes anything), sent only while
  // the page is visible: a page opened in a background tab or prerendered is
  // marked read when it is first shown. upTo is the newest message seen.
  var readUpTo = "", readDue = false;
  function markRead(upTo, due) {
    if (!readForm) return;
    if (upTo) readUpTo = upTo;
    readDue = readDue || due;
    if (!readDue || d.visibilityState !== "visible") return;
    readDue = false;
    var body = new URLSearchParams(new FormData(readForm));
    if (readUpTo) body.set("message", readUpTo);
    fetch(readForm.action, { method: "POST", body: body, headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) readDue = true; }, function () { readDue = true; }); // try again when next shown
  }
  if (readForm && list && list.hasAttribute("data-live")) {
    markRead("", readForm.hasAttribute("data-unread"));
    d.addEventListener("visibilitychange", function () { markRead("", false); });
  }

  function pendingBubble(text) {
    var li = d.createElement("li"), b = d.createElement("div"), p = d.createElement("p"), m = d.createElement("div");
    li.className = "msg pending";
    li.setAttribute("data-own", "");
    li.setAttribute("data-testid", "message");
    b.className = "bubble";
    p.className = "text";
    p.dir = "auto";
    p.setAttribute("data-testid", "message-text");
    p.textContent = text;
    m.className = "meta";
    m.textContent = "Sending…";
    b.appendChild(p);
    li.append(b, m);
    list.appendChild(li);
    filled();
    toEnd();
    return li;
  }

  // A conversation opens at its newest message, unless the link named
  // another one (#m-…).
  if (list && list.hasAttribute("data-live") && !/^#m-/.test(location.hash)) toEnd();

  // The sticky composer's height, for dm.css's scroll-padding (issue 8,
  // item 22): what Tab focuses is scrolled clear of it, however tall it grows.
  if (form && window.ResizeObserver) {
    new ResizeObserver(function () {
      d.documentElement.style.setProperty("--composer-h", form.offsetHeight + "px");
    }).observe(form);
  }

  if (form && list) {
    var ta = form.elements.text, hint = $("#composer-hint");
    if (hint) hint.hidden = false;
    ta.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", function (e) {
      var text = ta.value;
      if (!text.trim()) return; // the browser's "required" check speaks
      e.preventDefault();
      var body = new URLSearchParams(new FormData(form));
      var li = pendingBubble(text);
      ta.value = "";
      ta.removeAttribute("aria-invalid");
      showError("");
      fetch(form.action, { method: "POST", body: body, headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) {
          // A page instead of JSON (e.g. a redirect after a plain send) means it was sent.
          if (r.ok && !/json/.test(r.headers.get("Content-Type") || "")) { location.reload(); return new Promise(function () {}); }
          return r.json();
        })
        .then(function (j) {
          if (j.token && form.elements.token) form.elements.token.value = j.token;
          if (j.error || !j.id) throw Object.assign(new Error(j.error || FAIL), { replyGone: !j.replyTo });
          replyClear();
          var el = j.html && frag(j.html);
          if (byId(j.id)) li.remove();
          else if (el) li.replaceWith(el);
          else { li.id = "m-" + j.id; li.classList.remove("pending"); $(".meta", li).textContent = ""; }
          toEnd(); // the sent message, as it is now, in view
        })
        .catch(function (err) {
          if (err.replyGone) replyClear();
          li.classList.replace("pending", "failed");
          $(".meta", li).textContent = "Not sent";
          if (!ta.value) ta.value = text;
          ta.setAttribute("aria-invalid", "true");
          showError(err instanceof SyntaxError || err instanceof TypeError ? FAIL : err.message);
          ta.focus();
        });
    });
  }

  // Replies: Reply (in a message's action panel) fills the composer's reply
  // line (from its <template>) and reply_to field in place; Cancel and Esc
  // clear it, sending clears it. A quote whose parent is on the page jumps
  // there (the parent is then the :target, ringed by dm.css).
  function replyClear() {
    form.querySelectorAll("[data-testid^=composer-reply], [name=reply_to]").forEach(function (n) { n.remove(); });
  }
  function replyStart(li) {
    replyClear();
    var box = $("#reply-tpl").content.firstElementChild.cloneNode(true), b = box.querySelectorAll("bdi"),
      t = Array.from(textOf(li)), f = d.createElement("input");
    b[0].textContent = $(".sender", li).textContent;
    b[1].textContent = t.length > 80 ? t.slice(0, 79).join("") + "…" : t.join("");
    box.setAttribute("data-testid", "composer-reply");
    f.type = "hidden";
    f.name = "reply_to";
    f.value = li.id.slice(2);
    form.elements.token.after(f, box);
    form.elements.text.focus();
  }
  if (list && form) {
    d.addEventListener("click", function (e) {
      var a = e.target.closest("[data-reply], [data-parent], [data-testid=cancel-reply]"),
        id = a && (a.getAttribute("data-reply") || a.getAttribute("data-parent"));
      if (!a || e.button || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey || (id && !byId(id))) return;
      e.preventDefault();
      if (a.hasAttribute("data-parent")) location.replace("#m-" + id);
      else if (id) replyStart(byId(id));
      else { replyClear(); form.elements.text.focus(); }
    });
    form.elements.text.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && form.elements.reply_to) { e.preventDefault(); replyClear(); }
    });
  }

  // Live updates: one stream per page. EventSource reconnects by itself and
  // sends Last-Event-ID. While the document is hidden the page holds a
  // hidden stream instead (?hidden=1: the server polls for it every few
  // minutes), and none while frozen or in the back/forward cache; a new
  // stream resumes after the last event id seen (?lastEventId=, as a new
  // EventSource sends no header), so nothing is missed or shown twice.
  if (!window.EventSource || !(list || inbox)) return;
  var cid = list && list.getAttribute("data-convo-id");
  var es = null, esHidden = false, lastId = "", ended = false, listeners = [];
  function connect() {
    var hidden = d.visibilityState === "hidden";
    if (ended || (es && esHidden === hidden && es.readyState !== EventSource.CLOSED)) return;
    var q = new URLSearchParams();
    if (cid) q.set("convo", cid);
    if (hidden) q.set("hidden", "1");
    if (lastId) q.set("lastEventId", lastId);
    q = q.toString();
    disconnect();
    es = new EventSource("/events" + (q ? "?" + q : ""));
    esHidden = hidden;
    listeners.forEach(function (l) { es.addEventListener(l[0], l[1]); });
  }
  function disconnect() { if (es) es.close(); es = null; }
  // group.js listens through this too; a listener outlives the stream.
  window.skydmLive = {
    addEventListener: function (type, fn) {
      var l = [type, function (ev) { if (ev.lastEventId) lastId = ev.lastEventId; fn(ev); }];
      listeners.push(l);
      if (es) es.addEventListener(l[0], l[1]);
    }
  };
  function on(type, fn) {
    window.skydmLive.addEventListener(type, function (ev) {
      var data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      fn(data);
    });
  }
  on("position", function () {}); // where a stream starts: its id is all
  d.addEventListener("visibilitychange", connect);
  d.addEventListener("freeze", disconnect);
  d.addEventListener("resume", connect);
  addEventListener("pagehide", disconnect);
  addEventListener("pageshow", connect);
  connect();
  var here = function (x) { return list && list.hasAttribute("data-live") && x.convoId === cid; };
  on("message", function (x) { if (here(x)) addMessage(x.html); });
  on("delete", function (x) {
    var el = here(x) && byId(x.id);
    if (!el) return;
    var b = $(".bubble", el), p = d.createElement("p");
    p.className = "text placeholder";
    p.setAttribute("data-testid", "message-deleted");
    p.textContent = "Message deleted";
    el.setAttribute("data-deleted", "");
    b.replaceChildren(p);
    el.querySelectorAll(".reactions, .actions, [data-testid=reply]").forEach(function (n) { n.remove(); });
  });
  on("reaction", function (x) {
    var el = here(x) && byId(x.id);
    if (!el) return;
    var old = $(".reactions", el), nu = x.html ? frag(x.html) : null;
    if (old && nu) old.replaceWith(nu);
    else if (old) old.remove();
    else if (nu) $(".meta", el).after(nu);
  });
  on("convo", function (x) {
    setUnread(x.unreadTotal);
    if (!inbox || !inbox.hasAttribute("data-live")) return;
    var row = inbox.querySelector('[data-id="' + CSS.escape(x.id) + '"]');
    if (row) row.remove();
    var el = x.html && frag(x.html);
    if (el && el.getAttribute("data-status") === inbox.getAttribute("data-tab") &&
        (el.hasAttribute("data-unread") || !inbox.hasAttribute("data-unread-only"))) {
      inbox.prepend(el);
      var empty = $("[data-testid=empty]");
      if (empty) empty.remove();
    }
  });
  on("unread", function (x) { setUnread(x.total); });
  // Control events of internal/live: events were missed, or the session ended.
  on("resync", function () { if (!form || !form.elements.text.value) location.reload(); });
  on("auth", function (x) {
    ended = true;
    disconnect();
    var n = d.createElement("div"), main = $("main") || d.body;
    n.className = "notice error";
    n.setAttribute("role", "alert");
    n.setAttribute("data-testid", "live-error");
    n.textContent = x.message || "Live updates stopped. Reload the page.";
    main.prepend(n);
  });
})();
