// Every page: the theme follows the system until the user picks one (the choice is remembered);
// the language menu applies on change. Handlers are bound here, never inline: the
// Content-Security-Policy allows no inline script or event-handler attribute.
(function () {
  "use strict";
  var KEY = "raggen-theme";
  var root = document.documentElement;
  function apply(theme) { root.setAttribute("data-theme", theme || "auto"); }
  apply(localStorage.getItem(KEY));
  document.addEventListener("DOMContentLoaded", function () {
    var language = document.getElementById("language-select");
    if (language && language.form) {
      language.addEventListener("change", function () { language.form.submit(); });
    }
    var button = document.getElementById("theme-toggle");
    if (!button) { return; }
    button.addEventListener("click", function () {
      var current = root.getAttribute("data-theme");
      var systemDark = window.matchMedia("(prefers-color-scheme: dark)").matches;
      var isDark = current === "dark" || (current === "auto" && systemDark);
      var next = isDark ? "light" : "dark";
      localStorage.setItem(KEY, next);
      apply(next);
    });
  });
})();
