// The knowledge-bases page: create one, delete one after confirmation.
(function () {
  "use strict";
  var R = window.RAGGEN, t = R.t;
  var $ = function (id) { return document.getElementById(id); };

  $("kb-create-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    if (!form.reportValidity()) { return; }
    $("kb-create-error").textContent = "";
    R.api("POST", R.url("api.knowledgeBases"), R.formValues(form))
      .then(function (kb) { location.href = R.url("page.kb", { kb_id: kb.id }); })
      .catch(function (e) { $("kb-create-error").textContent = e.message; });
  });
  var items = $("kb-list");
  if (!items) { return; }
  items.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action=delete-kb]");
    if (!button) { return; }
    var li = button.closest("li");
    R.confirm(t("confirmDeleteKb", { name: li.dataset.name })).then(function (ok) {
      if (!ok) { return; }
      R.api("DELETE", R.url("api.knowledgeBase", { kb_id: li.dataset.id }))
        .then(function () { li.remove(); })
        .catch(function (e) { window.alert(e.message); });
    });
  });
})();
