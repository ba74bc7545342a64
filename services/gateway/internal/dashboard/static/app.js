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

  function badgeClass(state) {
    if (state === "active" || state === "linked" || state === "succeeded") return "ok";
    if (state === "pending") return "warn";
    return "bad";
  }

  function statusClass(code) {
    if (code >= 200 && code < 300) return "ok";
    if (code === 429 || code === 503) return "warn";
    return "bad";
  }

  function domID(prefix, id) { return prefix + String(id).replace(/[^A-Za-z0-9_]/g, ""); }

  // The live feed: SCIM requests, each with the events it produced and
  // each event's webhook deliveries, newest on top.
  function startLive(feed) {
    var status = document.getElementById("live-status");
    var empty = document.getElementById("live-empty");
    var setStatus = function (text, cls) {
      status.textContent = text;
      status.className = "live-status " + cls;
    };
    var top = function (li) {
      feed.insertBefore(li, feed.firstChild);
      while (feed.children.length > 200) feed.removeChild(feed.lastChild);
      if (empty) empty.hidden = true;
    };
    // requestItem returns the feed item of a request, made empty when the
    // request's events arrive before its record (they are appended while
    // it is served; the record is published once it is answered).
    var requestItem = function (id) {
      var li = document.getElementById(domID("req-", id));
      if (li) return li;
      li = el("li", "req pending-req");
      li.id = domID("req-", id);
      li.dataset.request = id;
      var head = el("div", "req-head");
      head.appendChild(el("span", "req-id mono small muted", id));
      li.appendChild(head);
      li.appendChild(el("ul", "req-events"));
      top(li);
      return li;
    };
    var parse = function (m) { try { return JSON.parse(m.data); } catch (e) { return null; } };
    var src = new EventSource(feed.dataset.stream);
    src.addEventListener("ready", function () {
      feed.dataset.live = "connected";
      setStatus("live", "on");
    });
    src.addEventListener("request", function (m) {
      var r = parse(m);
      if (!r) return;
      var li = requestItem(r.id);
      if (!li.classList.contains("pending-req")) return; // already shown
      li.classList.remove("pending-req");
      li.dataset.status = r.status;
      var head = li.querySelector(".req-head");
      head.textContent = "";
      head.appendChild(el("span", "ev-time", timeOf(r.at)));
      head.appendChild(el("span", "method", r.method));
      var path = r.path.replace(/^\/scim\/v2\/[^/]+/, "") || "/";
      head.appendChild(el("span", "path mono", path + (r.query ? "?" + decodeURIComponent(r.query.replace(/\+/g, " ")) : "")));
      head.appendChild(el("span", "badge " + statusClass(r.status), String(r.status)));
      head.appendChild(el("span", "small muted", r.latency_ms.toFixed(1) + " ms"));
      if (r.provider) head.appendChild(el("span", "chip", r.provider));
      var meta = el("div", "ev-meta", r.id + (r.user_agent ? " — " + r.user_agent : ""));
      li.insertBefore(meta, head.nextSibling);
      if (r.body || r.body_note) {
        var det = el("details", "req-body");
        det.appendChild(el("summary", "", "Request body" + (r.body_note ? " (" + r.body_note + ")" : "")));
        if (r.body) det.appendChild(el("pre", "code", r.body));
        li.insertBefore(det, meta.nextSibling);
      }
      if (empty) empty.hidden = true;
    });
    src.addEventListener("event", function (m) {
      var ev = parse(m);
      if (!ev || document.getElementById(domID("ev-", ev.id))) return;
      var li = el("li", "ev");
      li.id = domID("ev-", ev.id);
      li.dataset.event = ev.event;
      li.dataset.resource = ev.resource_id;
      var line = el("div");
      line.appendChild(el("span", "ev-time", timeOf(ev.occurred_at)));
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
        line.appendChild(el("span", "badge " + badgeClass(ev.state), ev.state));
      }
      li.appendChild(line);
      var meta = [];
      if (ev.source) meta.push(ev.source + (ev.provider ? " · " + ev.provider : ""));
      if (ev.reason) meta.push(ev.reason.replace(/_/g, " "));
      if (ev.changed && ev.changed.length) meta.push("changed: " + ev.changed.join(", "));
      if (ev.request_id) meta.push(ev.request_id);
      li.appendChild(el("div", "ev-meta", meta.join(" — ")));
      li.appendChild(el("ul", "deliveries"));
      if (ev.source === "scim" && ev.request_id) {
        var req = requestItem(ev.request_id);
        var list = req.querySelector(".req-events");
        list.appendChild(li);
      } else {
        top(li);
      }
    });
    src.addEventListener("delivery", function (m) {
      var dv = parse(m);
      if (!dv) return;
      var ev = document.getElementById(domID("ev-", dv.event_id));
      if (!ev) return;
      var id = domID("dl-", dv.id);
      var li = document.getElementById(id) || el("li", "delivery");
      li.id = id;
      li.dataset.delivery = dv.id;
      li.dataset.state = dv.state;
      li.textContent = "";
      var line = el("div");
      line.appendChild(el("span", "small", "→ webhook "));
      var a = el("a", "mono small", dv.endpoint_url);
      a.href = "/dashboard/webhooks/" + encodeURIComponent(dv.endpoint_id);
      line.appendChild(a);
      line.appendChild(document.createTextNode(" "));
      line.appendChild(el("span", "badge " + badgeClass(dv.state), dv.state));
      li.appendChild(line);
      var attempts = el("ol", "attempts");
      (dv.attempts || []).forEach(function (at) {
        var text = "#" + at.number + " " + timeOf(at.started_at) + " — " +
          (at.status_code ? "HTTP " + at.status_code : "no response") + " in " + at.latency_ms.toFixed(1) + " ms" +
          (at.error ? " — " + at.error : "");
        attempts.appendChild(el("li", at.status_code >= 200 && at.status_code < 300 ? "ok-text" : "bad-text", text));
      });
      if (dv.next_attempt_at) attempts.appendChild(el("li", "muted", "next attempt " + timeOf(dv.next_attempt_at)));
      li.appendChild(attempts);
      ev.querySelector(".deliveries").appendChild(li);
    });
    src.addEventListener("dropped", function (m) {
      var d = parse(m);
      top(el("li", "notice", (d ? d.count : 0) + " items were skipped because the browser fell behind; reload for the full list."));
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
