// Markdown to safe HTML: marked parses, DOMPurify removes anything that could run script or
// change styles (no style attributes, no <style>, no forms), highlight.js colours code.
(function () {
  "use strict";
  var PURIFY = {
    USE_PROFILES: { html: true },
    FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe", "object", "embed", "svg", "math"],
    FORBID_ATTR: ["style", "class", "id"],
  };
  // Links open in a new tab and never get the opener.
  window.DOMPurify.addHook("afterSanitizeAttributes", function (node) {
    if (node.tagName === "A") {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
    }
  });

  function render(markdown, target) {
    var html = window.marked.parse(markdown || "", { gfm: true, breaks: true, async: false });
    target.innerHTML = window.DOMPurify.sanitize(html, PURIFY);
    target.querySelectorAll("pre code").forEach(function (block) {
      window.hljs.highlightElement(block);
    });
  }

  window.RAGGEN.renderMarkdown = render;
})();
