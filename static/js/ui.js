// Small helpers shared by the pages: translated strings, the URL map, the JSON API and
// uploads (with the CSRF token), websockets, elements and the confirmation dialog. Each page
// has one module of its own (chat.js, kb_list.js, kb_detail.js) that uses these.
(function () {
  "use strict";
  function data(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : {};
  }
  var strings = data("raggen-i18n");
  // Every URL the pages use, rendered by the server (web/js_urls.py): "/kb/{kb_id}/".
  var urls = data("raggen-urls");

  // A translated string; "%(name)s" placeholders are filled from vars.
  function t(key, vars) {
    var text = Object.prototype.hasOwnProperty.call(strings, key) ? strings[key] : key;
    if (vars) {
      text = text.replace(/%\((\w+)\)s/g, function (_, name) {
        return vars[name] === undefined ? "" : String(vars[name]);
      });
    }
    return text;
  }

  // The URL named key, its {placeholders} filled from params; query (an object) is appended.
  function url(key, params, query) {
    if (!Object.prototype.hasOwnProperty.call(urls, key)) { throw new Error("No URL named " + key); }
    var path = urls[key].replace(/\{(\w+)\}/g, function (_, name) {
      var value = params ? params[name] : undefined;
      if (value === undefined || value === null) { throw new Error("The URL " + key + " needs " + name); }
      return encodeURIComponent(String(value));
    });
    var search = query ? new URLSearchParams(query).toString() : "";
    return search ? path + "?" + search : path;
  }

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) { return decodeURIComponent(match[1]); }
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // Calls the JSON API. Resolves with the parsed body (null for 204); rejects with an Error
  // whose message is the API's "detail" and whose status is the HTTP status.
  function api(method, path, body) {
    var options = { method: method, credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() } };
    if (body instanceof FormData) {
      options.body = body;
    } else if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).then(function (response) {
      if (response.status === 204) { return null; }
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var error = new Error(describe(data) || response.statusText);
          error.status = response.status;
          error.data = data;
          throw error;
        }
        return data;
      });
    });
  }

  // Uploads one file with XHR, for its byte progress (onBytes gets the percent sent); resolves
  // and rejects like api().
  function upload(path, field, file, onBytes) {
    return new Promise(function (resolve, reject) {
      var body = new FormData();
      body.append(field, file, file.name);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", path);
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      xhr.upload.onprogress = function (e) { if (e.lengthComputable) { onBytes(Math.round(100 * e.loaded / e.total)); } };
      xhr.onload = function () {
        var data = {};
        try { data = JSON.parse(xhr.responseText); } catch (err) { data = {}; }
        if (xhr.status >= 200 && xhr.status < 300) { resolve(data); return; }
        var error = new Error(describe(data) || xhr.statusText || String(xhr.status));
        error.status = xhr.status;
        error.data = data;
        reject(error);
      };
      xhr.onerror = function () { reject(new Error(t("connectionLost"))); };
      xhr.send(body);
    });
  }

  function describe(data) {
    if (!data || data.detail === undefined) { return ""; }
    if (typeof data.detail === "string") { return data.detail; }
    if (Array.isArray(data.detail)) {
      return data.detail.map(function (d) { return (d.loc || []).slice(-1)[0] + ": " + d.msg; }).join("; ");
    }
    return JSON.stringify(data.detail);
  }

  function wsUrl(path) {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  }

  // el("li", {class: "x", text: "y", onclick: fn}, [children]) — text is always textContent.
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === undefined || value === null || value === false) { return; }
      if (name === "text") { node.textContent = value; }
      else if (name.slice(0, 2) === "on") { node.addEventListener(name.slice(2), value); }
      else { node.setAttribute(name, value === true ? "" : value); }
    });
    (children || []).forEach(function (child) {
      if (child) { node.appendChild(typeof child === "string" ? document.createTextNode(child) : child); }
    });
    return node;
  }

  function statusLabel(status) { return t("status_" + status); }

  // Asks in the page's confirmation dialog (templates/web/_confirm_dialog.html); resolves true
  // when confirmed.
  function confirmDialog(text, okLabel) {
    var dialog = document.getElementById("confirm-dialog");
    document.getElementById("confirm-text").textContent = text;
    document.getElementById("confirm-ok").textContent = okLabel || t("delete");
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function () { resolve(dialog.returnValue === "confirm"); }, { once: true });
    });
  }

  // A form's named fields as the JSON body of the API: checkboxes as booleans, numbers as
  // numbers, empty numbers left out.
  function formValues(form) {
    var values = {};
    form.querySelectorAll("input[name], select[name], textarea[name]").forEach(function (field) {
      if (field.type === "checkbox") { values[field.name] = field.checked; }
      else if (field.type === "number") { values[field.name] = field.value === "" ? null : Number(field.value); }
      else { values[field.name] = field.value; }
    });
    Object.keys(values).forEach(function (k) { if (values[k] === null) { delete values[k]; } });
    return values;
  }

  window.RAGGEN = {
    t: t, url: url, api: api, upload: upload, wsUrl: wsUrl, el: el, statusLabel: statusLabel,
    confirm: confirmDialog, formValues: formValues,
  };
})();
