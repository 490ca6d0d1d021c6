// The call-flow editor: checks the document as it is typed and lists errors and warnings with their place.
//
// A textarea marked data-callflow-editor, inside an element marked data-callflow-field whose
// data-validate-url is the portal's validation endpoint (POST, CSRF-checked, the document as the form field
// `xml`; it answers {valid, errors, warnings}, each issue with line and column). Each issue is a button
// that puts the cursor on its line. Without JavaScript the form still works: the server checks on save.
// Also shows only the settings of the chosen mode (xml or url) when the page has [data-app-mode] radios.
(function () {
  "use strict";

  var DEBOUNCE_MS = 400;

  function csrfToken(element) {
    var form = element.closest("form");
    var input = form && form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // The offset in `text` of the start of 1-based `line`, plus column - 1 (clamped to that line).
  function offsetOf(text, line, column) {
    var offset = 0;
    for (var current = 1; current < line; current++) {
      var next = text.indexOf("\n", offset);
      if (next === -1) return text.length;
      offset = next + 1;
    }
    var end = text.indexOf("\n", offset);
    if (end === -1) end = text.length;
    return Math.min(offset + Math.max(0, (column || 1) - 1), end);
  }

  function positionOf(text, offset) {
    var before = text.slice(0, offset);
    var line = before.split("\n").length;
    return { line: line, column: offset - before.lastIndexOf("\n") };
  }

  function goTo(textarea, line, column) {
    var text = textarea.value;
    var offset = offsetOf(text, line, column);
    textarea.focus();
    textarea.setSelectionRange(offset, offset);
    // Bring the line into view: textareas do not scroll to a selection set from script in every browser.
    var style = window.getComputedStyle(textarea);
    var lineHeight = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.4 || 18;
    textarea.scrollTop = Math.max(0, (line - 3) * lineHeight);
  }

  function issueItem(textarea, issue, severity) {
    var item = document.createElement("li");
    item.setAttribute("data-testid", "callflow-issue");
    item.setAttribute("data-severity", severity);

    var badge = document.createElement("span");
    badge.className = "badge " + (severity === "error" ? "badge-danger" : "badge-expired");
    badge.textContent = severity === "error" ? "Error" : "Warning";

    var place = document.createElement("button");
    place.type = "button";
    place.className = "button button-ghost";
    place.textContent = "Line " + issue.line + ", column " + issue.column;
    place.setAttribute("data-testid", "callflow-issue-place");
    place.setAttribute("aria-label", "Go to line " + issue.line + ", column " + issue.column);
    place.addEventListener("click", function () { goTo(textarea, issue.line, issue.column); });

    var message = document.createElement("span");
    message.textContent = issue.message;
    item.append(badge, place, message);
    return item;
  }

  function setUp(field) {
    var textarea = field.querySelector("[data-callflow-editor]");
    var status = field.querySelector("[data-callflow-status]");
    var list = field.querySelector("[data-callflow-issues]");
    var position = field.querySelector("[data-callflow-position]");
    var url = field.getAttribute("data-validate-url");
    if (!textarea || !url) return;

    var timer = null;
    var sequence = 0;
    var lastChecked = null;

    function show(result) {
      list.replaceChildren();
      result.errors.forEach(function (issue) { list.append(issueItem(textarea, issue, "error")); });
      result.warnings.forEach(function (issue) { list.append(issueItem(textarea, issue, "warning")); });
      list.hidden = !list.children.length;
      var errors = result.errors.length, warnings = result.warnings.length;
      if (!errors && !warnings) {
        status.textContent = "Valid.";
      } else {
        var parts = [];
        if (errors) parts.push(errors + (errors === 1 ? " error" : " errors"));
        if (warnings) parts.push(warnings + (warnings === 1 ? " warning" : " warnings"));
        status.textContent = (errors ? "Not valid: " : "Valid, with ") + parts.join(" and ") + ".";
      }
      textarea.setAttribute("aria-invalid", errors ? "true" : "false");
    }

    function check() {
      var text = textarea.value;
      if (text === lastChecked) return;
      if (!text.trim()) {
        lastChecked = text;
        list.replaceChildren();
        list.hidden = true;
        status.textContent = "";
        return;
      }
      var mine = ++sequence;
      status.textContent = "Checking…";
      var body = new URLSearchParams();
      body.set("xml", text);
      fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(textarea), "Content-Type": "application/x-www-form-urlencoded" },
        body: body.toString(),
      })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (result) {
          // A slow answer to an older text must not replace the answer to the newer one.
          if (mine !== sequence) return;
          lastChecked = text;
          show(result);
        })
        .catch(function () {
          if (mine !== sequence) return;
          status.textContent = "Could not check the document just now; it is checked again when you save.";
        });
    }

    function schedule() {
      clearTimeout(timer);
      timer = setTimeout(check, DEBOUNCE_MS);
    }

    function showPosition() {
      if (!position) return;
      var here = positionOf(textarea.value, textarea.selectionStart);
      position.textContent = "Line " + here.line + ", column " + here.column;
    }

    textarea.addEventListener("input", function () { schedule(); showPosition(); });
    ["keyup", "click", "focus"].forEach(function (name) { textarea.addEventListener(name, showPosition); });
    if (textarea.value.trim()) check();
  }

  function setUpModes() {
    var radios = document.querySelectorAll("[data-app-mode] input[type=radio], input[type=radio][data-app-mode]");
    if (!radios.length) return;
    function apply() {
      var chosen = null;
      radios.forEach(function (radio) { if (radio.checked) chosen = radio.value; });
      document.querySelectorAll("[data-mode-section]").forEach(function (section) {
        // A section with an error from the last save stays in view, whatever the mode.
        var other = chosen !== null && section.getAttribute("data-mode-section") !== chosen;
        section.hidden = other && !section.querySelector(".field-error");
      });
    }
    radios.forEach(function (radio) { radio.addEventListener("change", apply); });
    apply();
  }

  function start() {
    document.querySelectorAll("[data-callflow-field]").forEach(setUp);
    setUpModes();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
