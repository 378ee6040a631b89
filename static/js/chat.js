// The chat page: conversations sidebar, streaming answers over the chat websocket, citations,
// model and parameter settings, the knowledge bases picker and the "/" prompt-templates menu.
(function () {
  "use strict";
  var R = window.RAGGEN, t = R.t, el = R.el;
  var initial = JSON.parse(document.getElementById("chat-state").textContent);
  var state = {
    conversation: initial.conversation,
    socket: null,
    socketReady: null,
    streaming: null, // {bubble, raw, sources, citations}
    templates: null,
    menuIndex: 0,
    loaded: Promise.resolve(), // the open conversation's messages, shown
  };
  var $ = function (id) { return document.getElementById(id); };
  var list = $("message-list"), input = $("composer-input"), statusLine = $("chat-status");
  var sendButton = $("send-button"), stopButton = $("stop-button");

  // --- settings -------------------------------------------------------------------------
  function readParams() {
    var params = { temperature: parseFloat($("param-temperature").value) };
    var maxTokens = parseInt($("param-max-tokens").value, 10);
    var topK = parseInt($("param-top-k").value, 10);
    if (maxTokens > 0) { params.max_tokens = maxTokens; }
    if (topK > 0) { params.top_k = topK; }
    return params;
  }
  function readSources() {
    var kbs = [], docs = [];
    document.querySelectorAll("#source-picker input[name=kb]:checked").forEach(function (box) {
      kbs.push(parseInt(box.value, 10));
    });
    document.querySelectorAll("#source-picker input[name=doc]:checked").forEach(function (box) {
      if (kbs.indexOf(parseInt(box.dataset.kb, 10)) >= 0) { docs.push(parseInt(box.value, 10)); }
    });
    return { knowledge_base_ids: kbs, document_ids: docs };
  }
  function readModel() {
    return { provider: $("provider-select").value, model: $("model-input").value.trim() };
  }
  function showTemperature() { $("param-temperature-value").textContent = $("param-temperature").value; }

  function applyConversation(c) {
    var select = $("provider-select");
    var wanted = (c && c.provider) || initial.defaultProvider;
    if (select.querySelector('option[value="' + wanted + '"]:not([disabled])')) { select.value = wanted; }
    else {
      var first = select.querySelector("option:not([disabled])");
      if (first) { select.value = first.value; }
    }
    updateModelPlaceholder();
    if (!c) { showTemperature(); return; }
    $("model-input").value = c.model || "";
    if (c.params.temperature !== undefined && c.params.temperature !== null) { $("param-temperature").value = c.params.temperature; }
    if (c.params.max_tokens) { $("param-max-tokens").value = c.params.max_tokens; }
    if (c.params.top_k) { $("param-top-k").value = c.params.top_k; }
    showTemperature();
    document.querySelectorAll("#source-picker input[name=kb]").forEach(function (box) {
      box.checked = c.knowledge_base_ids.indexOf(parseInt(box.value, 10)) >= 0;
    });
  }
  function updateModelPlaceholder() {
    var option = $("provider-select").selectedOptions[0];
    if (option && option.dataset.defaultModel) { $("model-input").placeholder = option.dataset.defaultModel; }
  }

  var saveTimer = null;
  function saveSettingsSoon() {
    if (!state.conversation) { return; }
    clearTimeout(saveTimer);
    saveTimer = setTimeout(function () {
      var body = Object.assign({ params: readParams() }, readModel(), readSources());
      R.api("PATCH", R.url("api.conversation", { conversation_id: state.conversation.id }), body)
        .then(function (c) { state.conversation = c; setStatus(t("saved")); })
        .catch(function (e) { setStatus(e.message, true); });
    }, 400);
  }

  function loadDocuments(details) {
    var holder = details.querySelector(".doc-pick");
    if (holder.dataset.loaded) { return; }
    holder.dataset.loaded = "1";
    var kb = details.dataset.kb;
    R.api("GET", R.url("api.knowledgeBaseDocuments", { kb_id: kb }, { limit: 200 })).then(function (page) {
      holder.textContent = "";
      var chosen = state.conversation ? state.conversation.document_ids : [];
      page.items.forEach(function (doc) {
        var box = el("input", { type: "checkbox", name: "doc", value: doc.id, "data-kb": kb, checked: chosen.indexOf(doc.id) >= 0 });
        box.addEventListener("change", saveSettingsSoon);
        holder.appendChild(el("label", { class: "doc-option" }, [box, " " + doc.title]));
      });
      if (!page.items.length) { holder.appendChild(el("span", { class: "muted", text: t("noHits") })); }
    }).catch(function (e) { holder.textContent = e.message; });
  }

  // --- sidebar --------------------------------------------------------------------------
  function conversationItem(c) {
    var active = state.conversation && c.id === state.conversation.id;
    var title = c.title || t("untitled");
    return el("li", { "data-id": c.id, class: active ? "active" : null }, [
      el("a", { href: R.url("page.conversation", { conversation_id: c.id }), text: title, "aria-current": active ? "page" : null }),
      el("button", { type: "button", class: "icon-button small", "data-action": "rename", "aria-label": t("rename") + ": " + title, title: t("rename"), text: "✎" }),
      el("button", { type: "button", class: "icon-button small", "data-action": "delete", "aria-label": t("delete") + ": " + title, title: t("delete"), text: "×" }),
    ]);
  }
  var SIDEBAR_PAGE = 100;
  function sidebarPage(offset) {
    var q = $("conversation-search").value.trim();
    return R.api("GET", R.url("api.conversations", null, { limit: SIDEBAR_PAGE, offset: offset, q: q }))
      .then(function (page) {
        $("conversations-more").hidden = offset + page.items.length >= page.count;
        return page;
      });
  }
  function showOlderConversations() {
    var ul = $("conversation-list");
    var loaded = ul.querySelectorAll("li[data-id]").length;
    return sidebarPage(loaded).then(function (page) {
      page.items.forEach(function (c) {
        if (!ul.querySelector('li[data-id="' + c.id + '"]')) { ul.appendChild(conversationItem(c)); }
      });
    });
  }
  function refreshSidebar() {
    return sidebarPage(0).then(function (page) {
      var ul = $("conversation-list");
      ul.textContent = "";
      page.items.forEach(function (c) {
        ul.appendChild(conversationItem(c));
        if (state.conversation && c.id === state.conversation.id && c.title) {
          $("chat-title").textContent = c.title;
          document.title = c.title + " · RAGGEN";
        }
      });
      if (!page.items.length) { ul.appendChild(el("li", { class: "muted empty", text: t("noConversations") })); }
    });
  }
  function onSidebarClick(event) {
    var button = event.target.closest("button[data-action]");
    if (!button) { return; }
    var li = button.closest("li"), id = parseInt(li.dataset.id, 10);
    var title = li.querySelector("a").textContent;
    if (button.dataset.action === "rename") {
      var name = window.prompt(t("renamePrompt"), title);
      if (name === null || !name.trim()) { return; }
      R.api("PATCH", R.url("api.conversation", { conversation_id: id }), { title: name.trim() }).then(function (c) {
        li.querySelector("a").textContent = c.title;
        if (state.conversation && state.conversation.id === id) { $("chat-title").textContent = c.title; }
      }).catch(function (e) { setStatus(e.message, true); });
    } else if (window.confirm(t("deleteConversation"))) {
      R.api("DELETE", R.url("api.conversation", { conversation_id: id })).then(function () {
        if (state.conversation && state.conversation.id === id) { location.href = R.url("page.chat"); return; }
        li.remove();
      }).catch(function (e) { setStatus(e.message, true); });
    }
  }

  // --- messages -------------------------------------------------------------------------
  function setStatus(text, isError) {
    statusLine.textContent = text || "";
    statusLine.classList.toggle("error", !!isError);
  }
  function scrollDown() { list.scrollTop = list.scrollHeight; }

  function userBubble(text) {
    return el("article", { class: "msg user", "aria-label": t("you") }, [
      el("div", { class: "msg-role", text: t("you") }),
      el("div", { class: "msg-body plain", text: text }),
    ]);
  }
  function assistantBubble() {
    var body = el("div", { class: "msg-body markdown" });
    var bubble = el("article", { class: "msg assistant", "aria-label": t("assistant") }, [
      el("div", { class: "msg-role", text: t("assistant") }),
      body,
      el("div", { class: "citations" }),
      el("div", { class: "msg-meta muted" }),
      el("div", { class: "msg-actions" }, [
        el("button", { type: "button", class: "link-button small", "data-action": "copy", text: t("copy") }),
        el("button", { type: "button", class: "link-button small", "data-action": "regenerate", text: t("regenerate") }),
      ]),
    ]);
    bubble.raw = "";
    bubble.citations = [];
    return bubble;
  }

  // Shows the answer text with its [n] markers turned into chips, and the chip row below.
  function paint(bubble) {
    var body = bubble.querySelector(".msg-body");
    R.renderMarkdown(bubble.raw, body);
    if (bubble.grounding) { markUnsupported(body, bubble.raw, bubble.grounding.unsupported || []); }
    var byNumber = {};
    (bubble.citations.length ? bubble.citations : bubble.sources || []).forEach(function (c) { byNumber[c.number] = c; });
    linkMarkers(body, byNumber);
    var row = bubble.querySelector(".citations");
    row.textContent = "";
    bubble.citations.forEach(function (c) { row.appendChild(chip(c, true)); });
  }
  // Marks the sentences no passage supports (the grounding check: spans of the raw markdown) in
  // the rendered text: each sentence is found in the text nodes, its markdown syntax and spacing
  // ignored, and wrapped in spans with a dotted underline, a tooltip, and the same words for a
  // screen reader.
  var MARKDOWN_SYNTAX = /[*_`#>~]/;
  function markUnsupported(root, raw, spans) {
    if (!spans.length) { return; }
    var walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT), flat = "", where = [];
    while (walker.nextNode()) {
      var node = walker.currentNode, text = node.nodeValue;
      for (var i = 0; i < text.length; i++) {
        var ch = text[i];
        if (MARKDOWN_SYNTAX.test(ch)) { continue; }
        if (/\s/.test(ch)) { if (!flat.length || flat[flat.length - 1] === " ") { continue; } ch = " "; }
        flat += ch;
        where.push([node, i]);
      }
    }
    var from = 0, marks = [];
    spans.forEach(function (span) {
      var needle = raw.slice(span.start, span.end)
        .replace(/^\s*(?:[-+*\u2022]|\d{1,3}[.)])\s+/gm, "")
        .split("").filter(function (ch) { return !MARKDOWN_SYNTAX.test(ch); }).join("")
        .replace(/\s+/g, " ").trim();
      var at = needle ? flat.indexOf(needle, from) : -1;
      if (at < 0) { return; }
      from = at + needle.length;
      marks.push([at, from - 1]);
    });
    // Wrap from the end, so that earlier positions stay valid.
    marks.reverse().forEach(function (mark) { wrapRange(where, mark[0], mark[1]); });
  }
  function wrapRange(where, first, last) {
    // Group the characters by text node, each group wrapped in its own span.
    var groups = [], i;
    for (i = first; i <= last; i++) {
      var node = where[i][0], offset = where[i][1], group = groups[groups.length - 1];
      if (group && group.node === node) { group.end = offset + 1; }
      else { groups.push({ node: node, start: offset, end: offset + 1 }); }
    }
    groups.forEach(function (g, n) {
      var piece = g.node.splitText(g.start);
      piece.splitText(g.end - g.start);
      var mark = el("span", { class: "ungrounded", title: t("notGrounded") });
      piece.parentNode.replaceChild(mark, piece);
      mark.appendChild(piece);
      if (n === groups.length - 1) {
        mark.appendChild(el("span", { class: "visually-hidden", text: " (" + t("notGrounded") + ")" }));
      }
    });
  }
  function chip(citation, long) {
    var label = long ? citation.number + " · " + (citation.document_title || citation.file_name) +
      (citation.page ? " · " + t("page", { n: citation.page }) : "") : String(citation.number);
    return el("button", {
      type: "button", class: "cite-chip", "data-number": citation.number, text: label,
      "aria-label": t("sourceTitle", { n: citation.number }) + ": " + (citation.document_title || "") +
        (citation.page ? ", " + t("page", { n: citation.page }) : ""),
      onclick: function () { openCitation(citation); },
    });
  }
  function linkMarkers(root, byNumber) {
    var walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    var nodes = [];
    while (walker.nextNode()) {
      if (/\[\d+\]/.test(walker.currentNode.nodeValue) && !walker.currentNode.parentNode.closest("pre, code")) { nodes.push(walker.currentNode); }
    }
    nodes.forEach(function (node) {
      var parts = node.nodeValue.split(/(\[\d+\])/), frag = document.createDocumentFragment();
      parts.forEach(function (part) {
        var m = part.match(/^\[(\d+)\]$/);
        if (m && byNumber[m[1]]) { frag.appendChild(chip(byNumber[m[1]], false)); }
        else if (part) { frag.appendChild(document.createTextNode(part)); }
      });
      node.parentNode.replaceChild(frag, node);
    });
  }
  function openCitation(c) {
    $("citation-title").textContent = t("sourceTitle", { n: c.number }) + " " + (c.document_title || c.file_name);
    $("citation-meta").textContent = [c.file_name, c.page ? t("page", { n: c.page }) : ""].filter(Boolean).join(" · ");
    $("citation-quote").textContent = c.quote;
    var link = $("citation-link");
    if (c.document_id) {
      link.hidden = false;
      link.href = R.url("api.documentFile", { doc_id: c.document_id }) + (c.page ? "#page=" + c.page : "");
      link.textContent = c.page ? t("openOriginal") + " (" + t("page", { n: c.page }) + ")" : t("openOriginalNoPage");
    } else {
      link.hidden = true;
      $("citation-meta").textContent += " — " + t("noDocument");
    }
    $("citation-dialog").showModal();
  }

  function showMessage(m) {
    if (m.role === "user") { list.appendChild(userBubble(m.content)); return; }
    var bubble = assistantBubble();
    bubble.raw = m.content;
    bubble.citations = m.citations || [];
    bubble.grounding = m.grounding || null;
    bubble.dataset.id = m.id;
    paint(bubble);
    var meta = bubble.querySelector(".msg-meta");
    if (m.status === "failed") { meta.textContent = m.error || t("failed"); meta.classList.add("error"); }
    else if (m.status === "stopped") { meta.textContent = t("stopped"); }
    else if (m.model) { meta.textContent = usageText(m.model, m.completion_tokens, m.total_ms); }
    list.appendChild(bubble);
  }
  function usageText(model, tokens, ms) {
    if (tokens === null || tokens === undefined || !ms) { return model; }
    return t("usage", { model: model, tokens: tokens, seconds: (ms / 1000).toFixed(1) });
  }
  function loadMessages() {
    // Page by page, oldest first, until all are in: a long conversation keeps its newest.
    var id = state.conversation.id, items = [];
    function more() {
      var path = R.url("api.conversationMessages", { conversation_id: id }, { limit: 500, offset: items.length });
      return R.api("GET", path).then(function (page) {
        items = items.concat(page.items);
        if (page.items.length && items.length < page.count) { return more(); }
      });
    }
    return more().then(function () {
      list.textContent = "";
      items.forEach(showMessage);
      scrollDown();
    });
  }

  // --- the websocket --------------------------------------------------------------------
  function connect() {
    if (state.socketReady) { return state.socketReady; }
    state.socketReady = new Promise(function (resolve, reject) {
      var socket = new WebSocket(R.wsUrl(R.url("ws.chat", { conversation_id: state.conversation.id })));
      state.socket = socket;
      socket.onopen = function () { resolve(socket); };
      socket.onmessage = function (e) { onEvent(JSON.parse(e.data)); };
      socket.onclose = function () {
        state.socketReady = null;
        state.socket = null;
        if (state.streaming) { finish("failed", t("connectionLost")); }
        reject(new Error(t("connectionLost")));
      };
    });
    return state.socketReady;
  }

  var paintQueued = false;
  function paintSoon(bubble) {
    if (paintQueued) { return; }
    paintQueued = true;
    requestAnimationFrame(function () { paintQueued = false; paint(bubble); scrollDown(); });
  }

  function onEvent(event) {
    if (event.type === "grounding") { showGrounding(event); return; }
    var s = state.streaming;
    if (!s) {
      if (event.type === "error") { setStatus(event.message, true); }
      return;
    }
    var bubble = s.bubble;
    if (event.type === "start") { bubble.dataset.id = event.message_id; }
    else if (event.type === "sources") { bubble.sources = event.sources; }
    else if (event.type === "delta") {
      bubble.raw = event.replaces ? event.text : bubble.raw + event.text;
      bubble.classList.remove("waiting");
      paintSoon(bubble);
    } else if (event.type === "citations") { bubble.citations = event.citations; paintSoon(bubble); }
    else if (event.type === "usage") { s.usage = event; }
    else if (event.type === "error") {
      // Before "start" nothing was saved and no "done" follows: this answer is over.
      if (bubble.dataset.id) { s.error = event.message; } else { finish("failed", event.message); }
    }
    else if (event.type === "done") { finish(event.status, s.error); }
  }

  // The grounding check arrives after "done": it marks the answer it names, wherever it is.
  function showGrounding(event) {
    var bubble = list.querySelector('.msg.assistant[data-id="' + event.message_id + '"]');
    if (!bubble) { return; }
    bubble.grounding = event;
    paint(bubble);
  }

  function startStreaming(bubble) {
    state.streaming = { bubble: bubble };
    bubble.classList.add("streaming", "waiting");
    bubble.querySelector(".msg-meta").textContent = t("thinking");
    stopButton.hidden = false;
    sendButton.disabled = true;
    list.setAttribute("aria-busy", "true");
  }
  function finish(status, error) {
    var s = state.streaming;
    if (!s) { return; }
    state.streaming = null;
    var bubble = s.bubble;
    bubble.classList.remove("streaming", "waiting");
    paint(bubble);
    var meta = bubble.querySelector(".msg-meta");
    meta.classList.remove("error");
    if (status === "failed") { meta.textContent = error || t("failed"); meta.classList.add("error"); }
    else if (status === "stopped") { meta.textContent = t("stopped"); }
    else if (s.usage) { meta.textContent = usageText(s.usage.model, s.usage.completion_tokens, s.usage.total_ms); }
    else { meta.textContent = ""; }
    bubble.dataset.status = status;
    stopButton.hidden = true;
    sendButton.disabled = false;
    list.removeAttribute("aria-busy");
    refreshSidebar().catch(function () {});
    input.focus();
  }

  function ensureConversation() {
    if (state.conversation) { return Promise.resolve(state.conversation); }
    var body = Object.assign({ params: readParams() }, readModel(), readSources());
    return R.api("POST", R.url("api.conversations"), body).then(function (c) {
      state.conversation = c;
      history.replaceState(null, "", R.url("page.conversation", { conversation_id: c.id }));
      var empty = $("empty-chat");
      if (empty) { empty.remove(); }
      showExportLinks(c.id);
      return c;
    });
  }

  // The export links are in the page (templates/web/chat.html), one per format; they point at
  // the open conversation.
  function showExportLinks(id) {
    document.querySelectorAll("a[data-export-format]").forEach(function (link) {
      link.href = R.url("api.conversationExport", { conversation_id: id }, { format: link.dataset.exportFormat });
      link.hidden = false;
    });
  }

  function send(options) {
    if (state.streaming) { return; }
    setStatus("");
    // A question waits for the history, so that the history never lands after (or over) it.
    ensureConversation().then(function () { return state.loaded; }).then(connect).then(function (socket) {
      if (!options.regenerate) { list.appendChild(userBubble(options.content)); }
      var bubble = assistantBubble();
      list.appendChild(bubble);
      startStreaming(bubble);
      scrollDown();
      var model = readModel();
      socket.send(JSON.stringify({
        type: "send", content: options.content || "", regenerate: !!options.regenerate,
        provider: model.provider, model: model.model, params: readParams(),
      }));
    }).catch(function (e) { setStatus(e.message, true); });
  }

  function onSubmit(event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text || state.streaming) { return; }
    input.value = "";
    closeMenu();
    send({ content: text });
  }

  function onMessageAction(event) {
    var button = event.target.closest("button[data-action]");
    if (!button) { return; }
    var bubble = button.closest(".msg");
    if (button.dataset.action === "copy") {
      navigator.clipboard.writeText(bubble.raw).then(function () {
        button.textContent = t("copied");
        setTimeout(function () { button.textContent = t("copy"); }, 1500);
      }).catch(function (e) { setStatus(e.message, true); });
    } else if (button.dataset.action === "regenerate" && !state.streaming) {
      var bubbles = list.querySelectorAll(".msg.assistant");
      if (bubbles[bubbles.length - 1] === bubble) { bubble.remove(); }
      send({ regenerate: true });
    }
  }

  // --- the prompt-templates menu ("/" at the start of the input) ------------------------
  function templates() {
    if (!state.templates) {
      state.templates = R.api("GET", R.url("api.promptTemplates")).catch(function (e) { state.templates = null; throw e; });
    }
    return state.templates;
  }
  function closeMenu() { $("template-menu").hidden = true; input.setAttribute("aria-expanded", "false"); }
  function updateMenu() {
    var text = input.value;
    if (text.charAt(0) !== "/" || text.indexOf("\n") >= 0) { closeMenu(); return; }
    templates().then(function (items) {
      // The input may have changed while the templates loaded.
      var text = input.value;
      if (text.charAt(0) !== "/" || text.indexOf("\n") >= 0) { closeMenu(); return; }
      var filter = text.slice(1).toLowerCase();
      var menu = $("template-menu");
      var shown = items.filter(function (tpl) { return tpl.name.toLowerCase().indexOf(filter) >= 0; });
      menu.textContent = "";
      state.menuIndex = Math.min(state.menuIndex, Math.max(0, shown.length - 1));
      shown.forEach(function (tpl, i) {
        menu.appendChild(el("div", {
          role: "option", id: "template-option-" + i, class: "template-option", "aria-selected": i === state.menuIndex ? "true" : "false",
          onmousedown: function (e) { e.preventDefault(); chooseTemplate(tpl); },
        }, [el("strong", { text: tpl.name }), el("span", { class: "muted", text: " " + tpl.body.slice(0, 80) })]));
      });
      if (!shown.length) { menu.appendChild(el("div", { class: "muted template-option", text: t("noTemplates") })); }
      menu.shown = shown;
      menu.hidden = false;
      input.setAttribute("aria-expanded", "true");
      input.setAttribute("aria-activedescendant", shown.length ? "template-option-" + state.menuIndex : "");
    }).catch(function (e) { setStatus(e.message, true); });
  }
  function chooseTemplate(tpl) {
    input.value = tpl.body;
    closeMenu();
    input.focus();
    var m = tpl.body.match(/\{\w+\}/);
    if (m) { input.setSelectionRange(m.index, m.index + m[0].length); }
    if (tpl.params) {
      if (tpl.params.temperature !== undefined) { $("param-temperature").value = tpl.params.temperature; showTemperature(); }
      if (tpl.params.max_tokens) { $("param-max-tokens").value = tpl.params.max_tokens; }
      if (tpl.params.top_k) { $("param-top-k").value = tpl.params.top_k; }
    }
  }

  function onKeyDown(event) {
    var menu = $("template-menu");
    if (!menu.hidden && menu.shown && menu.shown.length) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        var n = menu.shown.length;
        state.menuIndex = (state.menuIndex + (event.key === "ArrowDown" ? 1 : n - 1)) % n;
        updateMenu();
        return;
      }
      if (event.key === "Enter" || event.key === "Tab") {
        event.preventDefault();
        chooseTemplate(menu.shown[state.menuIndex]);
        return;
      }
    }
    if (event.key === "Escape") { closeMenu(); return; }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  }

  // --- wiring ---------------------------------------------------------------------------
  function toggle(buttonId, targetId, className) {
    var button = $(buttonId);
    button.addEventListener("click", function () {
      var open = document.body.classList.toggle(className);
      button.setAttribute("aria-expanded", open ? "true" : "false");
      if (open) { var first = $(targetId).querySelector("input, select, a, button"); if (first) { first.focus(); } }
    });
  }

  applyConversation(state.conversation);
  if (state.conversation) { showExportLinks(state.conversation.id); }
  $("composer").addEventListener("submit", onSubmit);
  input.addEventListener("keydown", onKeyDown);
  input.addEventListener("input", function () { state.menuIndex = 0; updateMenu(); });
  input.addEventListener("blur", function () {
    // Later, so that a click on an option lands first; not if the input has the focus again.
    setTimeout(function () { if (document.activeElement !== input) { closeMenu(); } }, 150);
  });
  stopButton.addEventListener("click", function () {
    if (state.socket && state.streaming) { state.socket.send(JSON.stringify({ type: "stop" })); }
  });
  list.addEventListener("click", onMessageAction);
  $("conversation-list").addEventListener("click", onSidebarClick);
  $("conversations-more").addEventListener("click", function () { showOlderConversations().catch(function () {}); });
  var searchTimer = null;
  $("conversation-search").addEventListener("input", function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () { refreshSidebar().catch(function (e) { setStatus(e.message, true); }); }, 250);
  });
  $("provider-select").addEventListener("change", function () { updateModelPlaceholder(); saveSettingsSoon(); });
  $("model-input").addEventListener("change", saveSettingsSoon);
  $("param-temperature").addEventListener("input", showTemperature);
  ["param-temperature", "param-max-tokens", "param-top-k"].forEach(function (id) { $(id).addEventListener("change", saveSettingsSoon); });
  document.querySelectorAll("#source-picker input[name=kb]").forEach(function (box) { box.addEventListener("change", saveSettingsSoon); });
  document.querySelectorAll("#source-picker details").forEach(function (details) {
    details.addEventListener("toggle", function () { if (details.open) { loadDocuments(details); } });
  });
  toggle("sidebar-toggle", "sidebar", "sidebar-open");
  toggle("settings-toggle", "chat-settings", "settings-open");
  function closePanels() {
    var wasOpen = document.body.classList.contains("sidebar-open") ? "sidebar-toggle"
      : document.body.classList.contains("settings-open") ? "settings-toggle" : null;
    ["sidebar-open", "settings-open"].forEach(function (c) { document.body.classList.remove(c); });
    $("sidebar-toggle").setAttribute("aria-expanded", "false");
    $("settings-toggle").setAttribute("aria-expanded", "false");
    if (wasOpen) { $(wasOpen).focus(); }
  }
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") { closePanels(); } });
  document.querySelectorAll(".panel-close").forEach(function (b) { b.addEventListener("click", closePanels); });
  document.querySelector(".chat-main").addEventListener("click", function (e) {
    if (document.body.classList.contains("sidebar-open") && !e.target.closest("#settings-toggle")) { closePanels(); }
  });
  if (state.conversation) {
    document.querySelectorAll("#source-picker details").forEach(function (details) {
      var kb = parseInt(details.dataset.kb, 10);
      if (state.conversation.document_ids.length && state.conversation.knowledge_base_ids.indexOf(kb) >= 0) {
        details.open = true;
      }
    });
    state.loaded = loadMessages().catch(function (e) { setStatus(e.message, true); });
  }
  input.focus();
})();
