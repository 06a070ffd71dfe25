// Copy buttons: the only JavaScript on the support page. A button names the element whose text
// it copies (data-copy-from), so what is copied is exactly the redacted text already shown.
(function () {
  "use strict";

  function announce(button, message) {
    var note = button.parentNode.querySelector(".copied");
    if (!note) {
      note = document.createElement("span");
      note.className = "copied";
      note.setAttribute("role", "status");
      button.insertAdjacentElement("afterend", note);
    }
    note.textContent = message;
  }

  function fallbackCopy(text) {
    // Older browsers and non-secure origins: copy through a hidden, read-only text area.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  function onClick(event) {
    var button = event.currentTarget;
    var source = document.getElementById(button.getAttribute("data-copy-from"));
    if (!source) { return; }
    var done = button.getAttribute("data-copied") || "Copied";
    var text = source.textContent.trim();
    // A multi-line summary pastes better into tickets with a final newline; an ID does not.
    if (source.tagName === "PRE") { text += "\n"; }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { announce(button, done); },
        function () { announce(button, fallbackCopy(text) ? done : "Select the text to copy"); }
      );
    } else {
      announce(button, fallbackCopy(text) ? done : "Select the text to copy");
    }
  }

  document.querySelectorAll("button[data-copy-from]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", onClick);
  });
})();
