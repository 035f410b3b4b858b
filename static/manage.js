// skydm's pages around a group conversation (members, invite link, join
// requests, joining, reports), progressive enhancement only: every page
// works without this file. Linked on those pages only, so a conversation
// page does not carry it.
"use strict";
(function () {
  var d = document;
  var $ = function (s, r) { return (r || d).querySelector(s); };

  // Invite link page: the link is selected on focus, and a Copy button
  // (clipboard API) copies it. Join requests page: marked read (POST)
  // once seen, like a conversation.
  Array.prototype.forEach.call(d.querySelectorAll("input[data-copy]"), function (inp) {
    inp.addEventListener("focus", function () { inp.select(); });
    if (!navigator.clipboard) return;
    var b = d.createElement("button");
    b.type = "button";
    b.className = "secondary";
    b.textContent = "Copy link";
    b.setAttribute("data-testid", "join-link-copy");
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(inp.value).then(function () { b.textContent = "Copied"; }, function () { inp.select(); });
    });
    inp.after(b);
  });
  var jrRead = $("#join-requests-read");
  if (jrRead) {
    var sendJR = function () {
      if (d.visibilityState !== "visible" || !jrRead) return;
      var f = jrRead;
      jrRead = null;
      fetch(f.action, { method: "POST", body: new URLSearchParams(new FormData(f)), headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { if (r.ok) f.hidden = true; else jrRead = f; }, function () { jrRead = f; });
    };
    sendJR();
    d.addEventListener("visibilitychange", sendJR);
  }
})();
