// Outbox page: the box in the table's head ticks or clears every row's box. It stays hidden
// without scripts (the rows' own boxes work either way).
document.addEventListener("DOMContentLoaded", () => {
  const all = document.getElementById("ops-select-all");
  if (!all) return;
  const boxes = () => document.querySelectorAll('input[name="ids"]');
  all.hidden = false;
  all.addEventListener("change", () => {
    boxes().forEach((box) => { box.checked = all.checked; });
  });
});
