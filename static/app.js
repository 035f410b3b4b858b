// skydm: every page works without this file. Later issues add Enter-to-send,
// live updates and optimistic sends here, as progressive enhancement only.
"use strict";
(function () {
  var d = document;

  // Focus follows the fragment (issue 8, item 27): a redirect after an action
  // points to the page's notice (#notice) or to the message acted on
  // (#m-<id>); focusing it puts keyboard and screen-reader users back where
  // they were and reads the notice out. The browser focuses a focusable
  // target by itself; a message gets tabindex=-1 while it holds focus.
  function focusTarget() {
    var id = location.hash.slice(1), el;
    try { el = id && d.getElementById(decodeURIComponent(id)); } catch (e) { return; }
    if (!el || !el.matches(".notice, .msg") || el.contains(d.activeElement)) return;
    if (!el.hasAttribute("tabindex")) {
      el.setAttribute("tabindex", "-1");
      el.addEventListener("blur", function () { el.removeAttribute("tabindex"); }, { once: true });
    }
    el.focus();
  }
  focusTarget();
  addEventListener("hashchange", focusTarget);

  // Escape closes an open disclosure, such as the Leave confirmation
  // (issue 8, item 28), and gives focus back to its summary.
  d.addEventListener("keydown", function (e) {
    if (e.key !== "Escape" || e.defaultPrevented) return;
    var open = (e.target.closest && e.target.closest("details[open]")) || d.querySelector("details.confirm[open]");
    if (!open) return;
    open.open = false;
    open.querySelector("summary").focus();
  });
})();
