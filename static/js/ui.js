// Small helpers shared by the pages: translated strings, the JSON API, websockets, elements.
(function () {
  "use strict";
  var node = document.getElementById("raggen-i18n");
  var strings = node ? JSON.parse(node.textContent) : {};

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

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) { return decodeURIComponent(match[1]); }
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // Calls the JSON API. Resolves with the parsed body (null for 204); rejects with an Error
  // whose message is the API's "detail" and whose status is the HTTP status.
  function api(method, url, body) {
    var options = { method: method, credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() } };
    if (body instanceof FormData) {
      options.body = body;
    } else if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
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

  window.RAGGEN = { t: t, api: api, wsUrl: wsUrl, el: el, statusLabel: statusLabel };
})();
