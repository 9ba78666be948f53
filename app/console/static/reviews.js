// The review queue's bulk form: "select all" and a count of the ticked reviews. Without this
// script the checkboxes still work one by one; the select-all box stays hidden.
(function () {
  "use strict";
  var all = document.getElementById("rv-select-all");
  var shown = document.getElementById("rv-selected");
  if (!all || !shown) {
    return;
  }
  var idle = shown.textContent;

  function boxes() {
    return Array.prototype.slice.call(
      document.querySelectorAll('input[type="checkbox"][name="ids"][form="bulk"]'));
  }

  function update() {
    var ticked = boxes().filter(function (box) { return box.checked; }).length;
    shown.textContent = ticked ? "已选 " + ticked + " 条" : idle;
    all.checked = ticked > 0 && ticked === boxes().length;
  }

  all.addEventListener("change", function () {
    boxes().forEach(function (box) { box.checked = all.checked; });
    update();
  });
  document.addEventListener("change", function (event) {
    if (event.target !== all && event.target.getAttribute("form") === "bulk") {
      update();
    }
  });
  document.getElementById("rv-select-all-label").hidden = false;
  update();
})();
