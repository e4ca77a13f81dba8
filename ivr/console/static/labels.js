// The call page's labelling form: picking a caller turn puts its words in the transcript field to correct.
(function () {
  "use strict";
  var turn = document.getElementById("label-turn");
  var text = document.getElementById("label-transcript");
  if (!turn || !text) { return; }
  turn.addEventListener("change", function () {
    var picked = turn.options[turn.selectedIndex];
    text.value = picked ? picked.getAttribute("data-text") || "" : "";
  });
})();
