// Theme: follows the system until the user picks one; the choice is remembered.
(function () {
  "use strict";
  var KEY = "raggen-theme";
  var root = document.documentElement;
  function apply(theme) { root.setAttribute("data-theme", theme || "auto"); }
  apply(localStorage.getItem(KEY));
  document.addEventListener("DOMContentLoaded", function () {
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
