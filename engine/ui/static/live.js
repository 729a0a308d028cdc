// Keeps a record page current: polls its live.json and updates the fields and the
// instances in place — every second while processes work on the record (or just
// after it changed), every ten seconds otherwise, and not while the tab is hidden.
(function () {
  "use strict";
  const root = document.getElementById("live");
  if (!root) return;
  const url = root.dataset.liveUrl;
  const started = Date.now();
  let busy = root.dataset.busy === "true";
  let timer = null;

  function badge(state) {
    const span = document.createElement("span");
    span.className = "state state-" + state;
    span.dataset.state = state;
    span.textContent = state;
    return span;
  }

  function cell(child) {
    const td = document.createElement("td");
    if (typeof child === "string") td.textContent = child;
    else td.appendChild(child);
    return td;
  }

  function showInstances(items) {
    const body = root.querySelector('[data-live="instances"]');
    if (!body) return;
    const rows = items.map(function (i) {
      const tr = document.createElement("tr");
      tr.dataset.instance = String(i.id);
      const link = document.createElement("a");
      link.href = "/ui/instances/" + i.id;
      link.textContent = String(i.id);
      tr.append(cell(link), cell(i.process_id), cell(badge(i.state)), cell(i.detail));
      tr.lastChild.className = "detail";
      return tr;
    });
    body.replaceChildren.apply(body, rows);
  }

  function show(data) {
    const note = root.querySelector('[data-live="note"]');
    if (data.deleted) {
      note.hidden = false;
      note.textContent = "This record was deleted.";
      return false;
    }
    for (const [name, value] of Object.entries(data.fields)) {
      const td = root.querySelector('[data-field="' + CSS.escape(name) + '"]');
      if (td && td.textContent !== value) {
        td.textContent = value;
        td.classList.remove("changed");
        void td.offsetWidth; // restart the highlight
        td.classList.add("changed");
      }
    }
    const version = document.querySelector('[data-live="version"]');
    if (version) version.textContent = String(data.version);
    showInstances(data.instances);
    busy = data.busy;
    return true;
  }

  function next() {
    clearTimeout(timer);
    const fast = busy || Date.now() - started < 15000;
    timer = setTimeout(poll, fast ? 1000 : 10000);
  }

  function poll() {
    if (document.hidden) return next();
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (answer) {
        if (answer.status === 401) throw new Error("signed out");
        return answer.json();
      })
      .then(function (data) {
        root.dataset.polled = String(Date.now());
        if (show(data)) next();
      })
      .catch(function () {
        next();
      });
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) poll();
  });
  next();
})();
