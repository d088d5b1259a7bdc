// farm serve: keeps each [data-section] element of the page up to date from the server's event stream.
// The server sends only the sections whose content changed ({id: {html, hash, container}}, null to remove one);
// the page never reloads. On a dropped connection it reconnects after 2 s, saying which versions it has.
(function () {
  "use strict";
  var url = document.body.getAttribute("data-events");
  var live = document.getElementById("live");
  if (!url || !window.EventSource) { if (live) live.textContent = "not live"; return; }
  function have() {
    var parts = [];
    document.querySelectorAll("[data-section]").forEach(function (el) {
      parts.push(el.id + ":" + el.getAttribute("data-hash"));
    });
    return parts.join(",");
  }
  function apply(changed) {
    Object.keys(changed).forEach(function (id) {
      var section = changed[id];
      var el = document.getElementById(id);
      if (section === null) { if (el) el.remove(); return; }
      if (!el) {
        var parent = document.getElementById(section.container) || document.body;
        el = document.createElement("div");
        el.id = id;
        el.setAttribute("data-section", "");
        parent.appendChild(el);
      }
      el.innerHTML = section.html;
      el.setAttribute("data-hash", section.hash);
    });
  }
  function connect() {
    var source = new EventSource(url + (url.indexOf("?") < 0 ? "?" : "&") + "have=" + encodeURIComponent(have()));
    source.addEventListener("sections", function (event) {
      apply(JSON.parse(event.data));
      if (live) { live.textContent = "live · updated " + new Date().toLocaleTimeString(); }
    });
    source.onerror = function () {
      source.close();
      if (live) live.textContent = "reconnecting…";
      setTimeout(connect, 2000);
    };
  }
  connect();
})();
