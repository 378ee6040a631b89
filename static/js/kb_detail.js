// One knowledge base's page: its documents with drag-and-drop upload and live progress over the
// progress websocket; the retrieval test panel; settings, re-index and delete; sharing.
(function () {
  "use strict";
  var R = window.RAGGEN, t = R.t, el = R.el;
  var $ = function (id) { return document.getElementById(id); };
  var FINAL = ["indexed", "failed"];

  // --- documents ---------------------------------------------------------------------------
  var kbId, canEdit = false, pending = {};

  function docRow(doc) {
    var details = [doc.file_type.toUpperCase()];
    if (doc.page_count) { details.push(t("pages", { n: doc.page_count })); }
    if (doc.chunk_count) { details.push(t("chunks", { n: doc.chunk_count })); }
    if (doc.version > 1) { details.push(t("version", { n: doc.version })); }
    var progress = el("progress", { class: "doc-progress", max: "100", value: String(doc.progress), "aria-label": doc.title });
    var row = el("tr", { "data-id": doc.id, "data-status": doc.status, "data-name": doc.title }, [
      el("td", { class: "doc-name" }, [
        el("a", { href: R.url("page.document", { doc_id: doc.id }), text: doc.title }), " ",
        el("span", { class: "muted small", text: details.join(" · ") }),
      ]),
      el("td", { class: "doc-status" }, [
        el("span", { class: "status-label" }), " ", progress, " ",
        el("span", { class: "doc-percent small muted" }),
        el("p", { class: "failure-reason error small" }),
      ]),
      el("td", { class: "small", text: formatSize(doc.size) }),
      el("td", { class: "doc-actions" }, canEdit ? [
        el("button", { type: "button", class: "link-button small", "data-action": "version", text: t("newVersion") }), " ",
        el("button", { type: "button", class: "link-button small", "data-action": "reindex", text: t("reindex") }), " ",
        el("button", { type: "button", class: "link-button small", "data-action": "retry", text: t("retry") }), " ",
        el("button", { type: "button", class: "danger small", "data-action": "delete", text: t("delete"), "aria-label": t("delete") + ": " + doc.title }),
      ] : []),
    ]);
    applyProgress(row, { status: doc.status, percent: doc.progress, failure_reason: doc.failure_reason, pages_done: null });
    return row;
  }
  function formatSize(bytes) {
    if (bytes < 1024) { return bytes + " B"; }
    if (bytes < 1048576) { return (bytes / 1024).toFixed(1) + " KB"; }
    return (bytes / 1048576).toFixed(1) + " MB";
  }
  function applyProgress(row, p) {
    var done = FINAL.indexOf(p.status) >= 0;
    row.dataset.status = p.status;
    var label = row.querySelector(".status-label");
    label.textContent = R.statusLabel(p.status);
    label.className = "status-label status-" + p.status;
    var bar = row.querySelector(".doc-progress"), percent = row.querySelector(".doc-percent");
    bar.value = p.status === "indexed" ? 100 : p.percent;
    bar.hidden = done;
    percent.hidden = done;
    percent.textContent = p.percent + "%" + (p.pages_done ? " · " + t("pagesDone", { n: p.pages_done }) : "");
    var reason = row.querySelector(".failure-reason");
    reason.textContent = p.failure_reason || "";
    reason.hidden = !p.failure_reason;
    var retry = row.querySelector("button[data-action=retry]");
    if (retry) { retry.hidden = p.status !== "failed"; }
  }
  function addRow(doc) {
    var old = document.querySelector('#doc-rows tr[data-id="' + doc.id + '"]');
    var row = docRow(doc);
    // A new version (or a re-index, which builds one) names the document it replaces until
    // it takes over; then the old row goes.
    var replaces = doc.replaces_id || (old && old.dataset.replaces);
    if (old) { old.replaceWith(row); } else { $("doc-rows").prepend(row); }
    $("no-documents").hidden = true;
    if (pending[doc.id]) { applyProgress(row, pending[doc.id]); delete pending[doc.id]; }
    if (replaces && String(replaces) !== String(doc.id)) {
      if (doc.is_current) {
        var previous = document.querySelector('#doc-rows tr[data-id="' + replaces + '"]');
        if (previous) { previous.remove(); }
      } else {
        row.dataset.replaces = replaces;
      }
    }
    return row;
  }
  function refreshDocument(id) {
    return R.api("GET", R.url("api.document", { doc_id: id }, { chunk_limit: 1 })).then(addRow);
  }

  function onProgress(p) {
    var row = document.querySelector('#doc-rows tr[data-id="' + p.document_id + '"]');
    if (!row) { pending[p.document_id] = p; return; }
    applyProgress(row, p);
    if (FINAL.indexOf(p.status) >= 0) { refreshDocument(p.document_id).catch(function () {}); }
  }

  // A switch of encoder re-embeds every chunk: "re-embedding N%" beside the encoder's name.
  function onReembed(p) {
    var status = $("kb-reembed");
    if (!status) { return; }
    status.hidden = false;
    status.textContent = "· " + t("reembedding", { percent: p.percent + "%" });
  }

  var retryDelay = 1000;
  function connectProgress() {
    var socket = new WebSocket(R.wsUrl(R.url("ws.progress", { kb_id: kbId })));
    socket.onopen = function () {
      retryDelay = 1000;
      // Catch up on what happened while we were not listening.
      document.querySelectorAll("#doc-rows tr[data-id]").forEach(function (row) {
        if (FINAL.indexOf(row.dataset.status) < 0) { refreshDocument(row.dataset.id).catch(function () {}); }
      });
    };
    socket.onmessage = function (e) {
      var data = JSON.parse(e.data);
      if (data.type === "progress") { onProgress(data); }
      else if (data.type === "reembed") { onReembed(data); }
    };
    socket.onclose = function (e) {
      if (e.code === 4401 || e.code === 4404) { return; }
      setTimeout(connectProgress, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 15000);
    };
  }

  function uploadRow(name) {
    var bar = el("progress", { class: "doc-progress", max: "100", value: "0", "aria-label": name });
    var row = el("tr", { class: "uploading", "data-name": name }, [
      el("td", { class: "doc-name", text: name }),
      el("td", { class: "doc-status" }, [el("span", { class: "status-label", text: t("uploading") }), " ", bar,
        el("p", { class: "failure-reason error small", hidden: true })]),
      el("td", { class: "small" }), el("td", {}),
    ]);
    $("doc-rows").prepend(row);
    $("no-documents").hidden = true;
    return row;
  }
  function failRow(row, message) {
    row.querySelector(".status-label").textContent = t("status_failed");
    row.querySelector(".doc-progress").hidden = true;
    var reason = row.querySelector(".failure-reason");
    reason.textContent = t("uploadFailed", { reason: message });
    reason.hidden = false;
    row.querySelector("td:last-child").appendChild(el("button", {
      type: "button", class: "link-button small", text: "✕", "aria-label": t("delete"),
      onclick: function () { row.remove(); },
    }));
  }

  function uploadFiles(files) {
    Array.prototype.forEach.call(files, function (file) {
      var row = uploadRow(file.name);
      R.upload(R.url("api.knowledgeBaseDocuments", { kb_id: kbId }), "files", file, function (pct) {
        row.querySelector(".doc-progress").value = pct;
      }).then(function (data) {
        var item = data.documents[0];
        row.remove();
        var newRow = addRow(item.document);
        if (item.duplicate) { $("upload-status").textContent = item.name + ": " + t("duplicate"); newRow.classList.add("flash"); }
      }).catch(function (e) { failRow(row, e.message); });
    });
  }

  function uploadVersion(docId, file) {
    var row = uploadRow(file.name);
    R.upload(R.url("api.documentVersions", { doc_id: docId }), "file", file, function (pct) {
      row.querySelector(".doc-progress").value = pct;
    }).then(function (data) { row.remove(); addRow(data.document); })
      .catch(function (e) { failRow(row, e.message); });
  }

  function onRowAction(event) {
    var button = event.target.closest("button[data-action]");
    if (!button) { return; }
    var row = button.closest("tr"), id = row.dataset.id, action = button.dataset.action;
    if (!id) { return; }
    if (action === "delete") {
      R.confirm(t("confirmDeleteDocument", { name: row.dataset.name })).then(function (ok) {
        if (!ok) { return; }
        R.api("DELETE", R.url("api.document", { doc_id: id })).then(function () {
          row.remove();
          $("no-documents").hidden = !!document.querySelector("#doc-rows tr");
        }).catch(function (e) { $("upload-status").textContent = e.message; });
      });
    } else if (action === "reindex" || action === "retry") {
      var target = action === "retry" ? R.url("api.documentRetry", { doc_id: id }) : R.url("api.documentReindex", { doc_id: id });
      R.api("POST", target).then(function (doc) {
        addRow(doc);
        $("upload-status").textContent = t("reindexQueued");
      }).catch(function (e) { $("upload-status").textContent = e.message; });
    } else if (action === "version") {
      var picker = $("version-input");
      picker.value = "";
      picker.onchange = function () { if (picker.files.length) { uploadVersion(id, picker.files[0]); } };
      picker.click();
    }
  }

  function wireDropZone() {
    var zone = $("drop-zone"), input = $("file-input");
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (e) { uploadFiles(e.dataTransfer.files); });
    zone.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
    });
    input.addEventListener("change", function () { uploadFiles(input.files); input.value = ""; });
  }

  // --- the retrieval test ------------------------------------------------------------------
  function score(label, value) {
    return el("span", { class: "score" }, [label + " ", el("strong", { text: value === null || value === undefined ? "—" : value.toFixed(3) })]);
  }
  function onSearch(event) {
    event.preventDefault();
    var results = $("search-results"), notes = $("search-notes");
    results.textContent = "";
    notes.textContent = "…";
    R.api("POST", R.url("api.search"), {
      knowledge_base_ids: [kbId], query: $("search-query").value,
      mode: $("search-mode").value, top_k: parseInt($("search-top-k").value, 10) || 10,
    }).then(function (result) {
      notes.textContent = result.notes.join(" ");
      if (!result.hits.length) { notes.textContent += " " + t("noHits"); }
      result.hits.forEach(function (hit) {
        var page = hit.page_start ? t("page", { n: hit.page_start }) : "";
        results.appendChild(el("li", { class: "hit" }, [
          el("p", { class: "hit-head" }, [
            el("a", { href: R.url("page.document", { doc_id: hit.document_id }) + "#chunk-" + hit.chunk_id, text: hit.document_title }),
            page ? " · " + page : "", hit.heading_path ? " · " + hit.heading_path : "",
          ]),
          el("p", { class: "scores" }, [score(t("fused"), hit.scores.fused), score(t("dense"), hit.scores.dense), score(t("keyword"), hit.scores.keyword)]),
          el("p", { class: "hit-text", text: hit.text }),
        ]));
      });
    }).catch(function (e) { notes.textContent = e.message; });
  }

  // --- sharing (the owner only) ------------------------------------------------------------
  function shareRow(share) {
    var roles = $("share-role");
    var select = el("select", { "data-action": "share-role", "aria-label": t("roleOf", { name: share.username }) });
    Array.prototype.forEach.call(roles.options, function (option) {
      var copy = el("option", { value: option.value, text: option.textContent });
      if (option.value === share.role) { copy.selected = true; }
      select.appendChild(copy);
    });
    return el("li", { "data-share-id": share.id, "data-username": share.username }, [
      el("span", { class: "share-user", text: share.username }), " ", select, " ",
      el("button", { type: "button", class: "danger small", "data-action": "unshare", text: t("remove") }),
    ]);
  }
  function wireSharing() {
    var list = $("share-list"), error = $("share-error");
    var shares = R.url("api.knowledgeBaseShares", { kb_id: kbId });
    function share(li) { return R.url("api.knowledgeBaseShare", { kb_id: kbId, share_id: li.dataset.shareId }); }
    function updateEmpty() { $("share-empty").hidden = list.children.length > 0; }
    // The answer is the same whether or not the user exists (no user enumeration): the list,
    // read again, shows who has access.
    $("share-form").addEventListener("submit", function (event) {
      event.preventDefault();
      error.textContent = "";
      $("share-status").textContent = "";
      R.api("POST", shares, { user: $("share-user").value, role: $("share-role").value }).then(function (answer) {
        $("share-status").textContent = answer.detail;
        $("share-user").value = "";
        return R.api("GET", shares);
      }).then(function (items) {
        list.replaceChildren.apply(list, items.map(shareRow));
        updateEmpty();
      }).catch(function (e) { error.textContent = e.message; });
    });
    list.addEventListener("change", function (event) {
      var li = event.target.closest("li[data-share-id]");
      if (!li || event.target.dataset.action !== "share-role") { return; }
      error.textContent = "";
      R.api("PATCH", share(li), { role: event.target.value })
        .catch(function (e) { error.textContent = e.message; });
    });
    list.addEventListener("click", function (event) {
      var li = event.target.closest("li[data-share-id]");
      if (!li || event.target.dataset.action !== "unshare") { return; }
      error.textContent = "";
      R.api("DELETE", share(li)).then(function () { li.remove(); updateEmpty(); })
        .catch(function (e) { error.textContent = e.message; });
    });
  }

  function detailPage(page) {
    kbId = parseInt(page.dataset.kbId, 10);
    canEdit = page.dataset.role === "owner" || page.dataset.role === "editor";
    $("doc-rows").addEventListener("click", onRowAction);
    $("search-form").addEventListener("submit", onSearch);
    if ($("share-form")) { wireSharing(); }
    connectProgress();
    if (!canEdit) { return; }
    wireDropZone();
    $("kb-settings-form").addEventListener("submit", function (event) {
      event.preventDefault();
      $("kb-settings-error").textContent = "";
      R.api("PATCH", R.url("api.knowledgeBase", { kb_id: kbId }), R.formValues(event.target)).then(function (data) {
        $("kb-settings-status").textContent = data.reindexing ? t("savedReindexing") : t("saved");
        document.querySelector("#kb-page h1").textContent = data.knowledge_base.name;
      }).catch(function (e) { $("kb-settings-error").textContent = e.message; });
    });
    $("kb-reindex").addEventListener("click", function () {
      R.api("POST", R.url("api.knowledgeBaseReindex", { kb_id: kbId })).then(function () {
        $("kb-settings-status").textContent = t("reindexQueued");
      }).catch(function (e) { $("kb-settings-error").textContent = e.message; });
    });
    if (!$("kb-delete")) { return; }
    $("kb-delete").addEventListener("click", function () {
      R.confirm(t("confirmDeleteKb", { name: page.dataset.kbName })).then(function (ok) {
        if (!ok) { return; }
        R.api("DELETE", R.url("api.knowledgeBase", { kb_id: kbId })).then(function () { location.href = R.url("page.kbList"); })
          .catch(function (e) { $("kb-settings-error").textContent = e.message; });
      });
    });
  }

  detailPage($("kb-page"));
})();
