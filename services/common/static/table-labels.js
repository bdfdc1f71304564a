/* On a phone (cme.css, max-width 600px) a table.responsive hides its header row and shows each row as a stack of
   cells; without the header a row of 授课情况 was five unlabelled boxes and a bare checkbox. Each body cell is given
   its column's header text as data-label, which the stylesheet shows before the value on a phone only. One place
   for every list and form table of the desk pages: no template names its labels twice. A cell whose only content
   is a labelled checkbox reads the checkbox's own label (删除此行, not the column's 删除); a column without a
   header text (an action column) stays unlabelled, and so does a cell spanning columns of different labels (暂无
   机构负责人 across the whole row is no 真实姓名); a template's own data-label is kept. */
(function () {
  "use strict";
  function text(el) { return el.textContent.replace(/\s+/g, " ").trim(); }

  /* the label of each column: its header cells' texts from the top row down (a grouped header reads "第一天 上午"),
     colspan and rowspan respected */
  function columnLabels(thead) {
    var parts = [], taken = [];
    Array.prototype.forEach.call(thead.rows, function (row, r) {
      var col = 0;
      taken[r] = taken[r] || [];
      Array.prototype.forEach.call(row.cells, function (cell) {
        while (taken[r][col]) { col++; }
        var rows = Math.max(cell.rowSpan, 1), cols = Math.max(cell.colSpan, 1), label = text(cell);
        for (var dc = 0; dc < cols; dc++) {
          for (var dr = 0; dr < rows; dr++) { taken[r + dr] = taken[r + dr] || []; taken[r + dr][col + dc] = true; }
          parts[col + dc] = parts[col + dc] || [];
          if (label) { parts[col + dc].push(label); }
        }
        col += cols;
      });
    });
    return parts.map(function (p) { return p ? p.join(" ") : ""; });
  }

  function ownLabel(cell, label) {
    var box = cell.querySelector("input[type=checkbox][aria-label], input[type=radio][aria-label]");
    return box && !text(cell) ? box.getAttribute("aria-label") : label;
  }

  function labelTable(table) {
    if (!table.tHead) { return; }
    var labels = columnLabels(table.tHead);
    Array.prototype.forEach.call(table.tBodies, function (body) {
      Array.prototype.forEach.call(body.rows, function (row) {
        var col = 0;
        Array.prototype.forEach.call(row.cells, function (cell) {
          var cols = Math.max(cell.colSpan, 1), label = labels[col] || "";
          for (var dc = 1; dc < cols; dc++) { if (labels[col + dc] !== label) { label = ""; } }
          label = ownLabel(cell, label);
          if (label && !cell.hasAttribute("data-label")) { cell.setAttribute("data-label", label); }
          col += cols;
        });
      });
    });
  }

  function labelAll() { document.querySelectorAll("table.responsive").forEach(labelTable); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", labelAll); } else { labelAll(); }
})();
