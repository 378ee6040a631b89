// Markdown to safe HTML: marked parses, DOMPurify removes anything that could run script or
// change styles (no style attributes, no <style>, no forms), highlight.js colours code.
// An answer may echo text planted in a document, so it never loads anything from elsewhere: an
// image from another origin becomes a plain link to it (an <img> would send the browser to that
// URL, carrying whatever the URL was made to hold), and media, srcset and background
// attributes are removed. Only same-origin and data: images are shown.
(function () {
  "use strict";
  var PURIFY = {
    USE_PROFILES: { html: true },
    FORBID_TAGS: [
      "style", "form", "input", "button", "textarea", "select", "iframe", "object", "embed", "svg",
      "math", "audio", "video", "source", "track", "picture", "link", "meta", "base",
    ],
    FORBID_ATTR: ["style", "class", "id", "srcset", "background", "poster", "ping"],
  };
  // Links open in a new tab and never get the opener.
  window.DOMPurify.addHook("afterSanitizeAttributes", function (node) {
    if (node.tagName === "A") {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
    }
  });

  // Whether an image may be shown: from our own origin or a data: URL.
  function localImage(src) {
    var url;
    try { url = new URL(src, window.location.href); } catch (e) { return false; }
    return url.protocol === "data:" || url.origin === window.location.origin;
  }

  // A remote image as a link: its alt text (or its address) pointing to the address.
  function imageAsLink(img) {
    var src = img.getAttribute("src") || "";
    var label = img.getAttribute("alt") || src;
    var url = null;
    try { url = new URL(src, window.location.href); } catch (e) { url = null; }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
      return document.createTextNode(label);
    }
    var link = document.createElement("a");
    link.href = url.href;
    link.textContent = label;
    link.title = url.href;
    link.target = "_blank";
    link.rel = "noopener noreferrer nofollow";
    return link;
  }

  // Sanitised HTML as nodes of an inert <template>: nothing in it loads until it is inserted,
  // so remote images are replaced before the browser could fetch them.
  function toFragment(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    template.content.querySelectorAll("img").forEach(function (img) {
      if (!localImage(img.getAttribute("src") || "")) {
        img.replaceWith(imageAsLink(img));
      }
    });
    return template.content;
  }

  function render(markdown, target) {
    var html = window.marked.parse(markdown || "", { gfm: true, breaks: true, async: false });
    target.replaceChildren(toFragment(window.DOMPurify.sanitize(html, PURIFY)));
    target.querySelectorAll("pre code").forEach(function (block) {
      window.hljs.highlightElement(block);
    });
  }

  window.RAGGEN.renderMarkdown = render;
})();
