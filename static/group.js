// skydm group conversations (views/dm_group.templ), linked on group pages
// only, after dm.js: a live message continues the run of its sender's
// messages (no second name or avatar), and group events on dm.js's live
// stream (internal/handlers/dm LiveGroup) add their system line, rename
// the title, close the composer when the group is locked (a draft being
// typed is kept, read-only) and reload for it when unlocked; "gone" says
// the viewer is no longer a member. Markup only from server fragments.
"use strict";
(function () {
  var d = document;
  var $ = function (s, r) { return (r || d).querySelector(s); };
  var list = $("#msgs"), es = window.skydmLive;
  if (!list) return;
  var cid = list.getAttribute("data-convo-id");

  function continueRun(el) {
    var av = $(".msg-av", el), p = el.previousElementSibling;
    while (p && p.hasAttribute("data-cont")) p = p.previousElementSibling;
    var pa = p && $(".msg-av", p);
    if (av && pa && pa.getAttribute("data-sender") === av.getAttribute("data-sender")) { el.setAttribute("data-cont", ""); av.remove(); }
  }
  new MutationObserver(function (ms) {
    ms.forEach(function (m) {
      m.addedNodes.forEach(function (n) { if (n.nodeType === 1 && n.classList.contains("msg")) continueRun(n); });
    });
  }).observe(list, { childList: true });

  if (!es) return;
  function on(type, fn) {
    es.addEventListener(type, function (ev) {
      var x;
      try { x = JSON.parse(ev.data); } catch (e) { return; }
      if (list.hasAttribute("data-live") && x.convoId === cid) fn(x);
    });
  }
  function frag(html) {
    var t = d.createElement("template");
    t.innerHTML = html; // server-rendered fragment (templ-escaped)
    return t.content.firstElementChild;
  }
  // The composer's skip link follows what replaced it.
  function skipTo(el) {
    var s = $("[data-testid=skip]");
    if (s) s.href = "#" + el.id;
  }

  on("group", function (x) {
    var el = x.html && frag(x.html), end = innerHeight + scrollY >= d.body.scrollHeight - 150;
    if (el && !d.getElementById(el.id)) {
      list.appendChild(el);
      var empty = $(".log > [data-testid=empty]");
      if (empty) empty.remove();
      if (end) scrollTo(0, d.body.scrollHeight);
    }
    var h = $("[data-testid=convo-title]");
    if (x.title && h) {
      d.title = d.title.replace(h.textContent, x.title);
      h.title = h.firstElementChild.textContent = x.title;
    }
    var c = $("#composer");
    if (x.locked && c) {
      var lock = frag(x.locked);
      if (c.elements.text.value) { c.elements.text.readOnly = true; $("[data-testid=send]", c).disabled = true; c.before(lock); }
      else { c.replaceWith(lock); skipTo(lock); }
    }
    if (x.unlocked && !c) location.reload();
  });

  on("gone", function () {
    var n = d.createElement("div"), c = $("#composer") || $("#composer-locked"), g = $("[data-gone]");
    n.className = "notice";
    n.id = "gone";
    n.tabIndex = -1;
    n.setAttribute("role", "status");
    n.setAttribute("data-testid", "gone");
    n.textContent = g ? g.getAttribute("data-gone") : "";
    if (c) c.replaceWith(n); else list.after(n);
    skipTo(n);
  });
})();
