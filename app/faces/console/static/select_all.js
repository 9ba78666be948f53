// "Select all" for a page's row checkboxes, wired by data attributes on the head box:
//   data-select-all="CSS selector"   the row boxes it ticks and clears, and follows: ticked
//                                    when every row is, half-ticked when some are;
//   data-select-count="element id"   optional: where to count the ticked rows (its text is
//                                    kept for when none is), worded by
//   data-select-format="已选 {n} 条".
// The head box, or the label around it, is hidden in the HTML: without this script the rows'
// own boxes still work one by one.
"use strict";
document.querySelectorAll("input[data-select-all]").forEach((all) => {
  const rows = () => Array.from(document.querySelectorAll(all.dataset.selectAll));
  const counter = document.getElementById(all.dataset.selectCount || "");
  const idle = counter ? counter.textContent : "";
  const update = () => {
    const ticked = rows().filter((box) => box.checked).length;
    all.checked = ticked > 0 && ticked === rows().length;
    all.indeterminate = ticked > 0 && !all.checked;
    if (counter) {
      counter.textContent = ticked ? all.dataset.selectFormat.replace("{n}", ticked) : idle;
    }
  };
  all.addEventListener("change", () => {
    rows().forEach((box) => { box.checked = all.checked; });
    update();
  });
  document.addEventListener("change", (event) => {
    if (event.target !== all && event.target.matches(all.dataset.selectAll)) {
      update();
    }
  });
  (all.closest("[hidden]") || all).hidden = false;
  update();
});
