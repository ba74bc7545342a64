// dsync dashboard: copy buttons, secret reveal, the live feed and the
// health page's refresh. Plain DOM, no build step; served as a file so the
// Content-Security-Policy can forbid inline script. Text from the server is
// only ever set with textContent, never parsed as HTML.
(function () {
  "use strict";

  function copyText(input, button) {
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      button.classList.add("copied");
      setTimeout(function () { button.textContent = label; button.classList.remove("copied"); }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () { fallback(); });
    } else {
      fallback();
    }
    function fallback() {
      var type = input.type;
      input.type = "text";
      input.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selected */ }
      input.type = type;
    }
  }

  document.addEventListener("click", function (e) {
    var t = e.target.closest("button");
    if (!t) return;
    if (t.dataset.copy) {
      var input = document.getElementById(t.dataset.copy);
      if (input) copyText(input, t);
    } else if (t.dataset.reveal) {
      var field = document.getElementById(t.dataset.reveal);
      if (!field) return;
      var show = field.type === "password";
      field.type = show ? "text" : "password";
      t.textContent = show ? "Hide" : "Reveal";
      t.setAttribute("aria-pressed", show ? "true" : "false");
    }
  });

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }

  function timeOf(iso) {
    var d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function startLive(feed) {
    var status = document.getElementById("live-status");
    var empty = document.getElementById("live-empty");
    var setStatus = function (text, cls) {
      status.textContent = text;
      status.className = "live-status " + cls;
    };
    var src = new EventSource(feed.dataset.stream);
    src.addEventListener("ready", function () {
      feed.dataset.live = "connected";
      setStatus("live", "on");
    });
    src.addEventListener("event", function (m) {
      var ev;
      try { ev = JSON.parse(m.data); } catch (e) { return; }
      var li = el("li");
      li.dataset.event = ev.event;
      li.dataset.resource = ev.resource_id;
      li.appendChild(el("span", "ev-time", timeOf(ev.occurred_at)));
      var line = el("div");
      line.appendChild(el("span", "ev-name", ev.event));
      line.appendChild(document.createTextNode(" "));
      if (ev.url && ev.url.indexOf("/dashboard/") === 0) {
        var a = el("a", "ev-label", ev.label);
        a.href = ev.url;
        line.appendChild(a);
      } else {
        line.appendChild(el("span", "ev-label", ev.label));
      }
      if (ev.state) {
        line.appendChild(document.createTextNode(" "));
        line.appendChild(el("span", "badge " + (ev.state === "active" || ev.state === "linked" ? "ok" : "bad"), ev.state));
      }
      li.appendChild(line);
      var meta = [];
      if (ev.source) meta.push(ev.source + (ev.provider ? " · " + ev.provider : ""));
      if (ev.reason) meta.push(ev.reason.replace(/_/g, " "));
      if (ev.changed && ev.changed.length) meta.push("changed: " + ev.changed.join(", "));
      if (ev.request_id) meta.push(ev.request_id);
      li.appendChild(el("div", "ev-meta", meta.join(" — ")));
      feed.insertBefore(li, feed.firstChild);
      while (feed.children.length > 200) feed.removeChild(feed.lastChild);
      if (empty) empty.hidden = true;
    });
    src.addEventListener("dropped", function (m) {
      var n = 0;
      try { n = JSON.parse(m.data).count; } catch (e) { /* keep 0 */ }
      feed.insertBefore(el("li", "notice", n + " events were skipped because the browser fell behind; reload for the full list."), feed.firstChild);
    });
    src.onerror = function () {
      delete feed.dataset.live;
      setStatus("reconnecting…", "off");
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var feed = document.getElementById("live-feed");
    if (feed && window.EventSource) startLive(feed);
    var refresh = document.querySelector("[data-autorefresh]");
    if (refresh) {
      setTimeout(function () { window.location.reload(); }, Number(refresh.dataset.autorefresh) * 1000);
    }
  });
})();
