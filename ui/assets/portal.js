// The rater portal's keyboard: 1-4 choose the verdict (also right after a button was pressed), Enter submits
// (not while typing, nor on a focused button, which Enter presses itself); Submit, Skip and Back bring the page
// back to its top for the next item.
if (!window.portalKeys) {
  window.portalKeys = true;
  const shown = (node) => Boolean(node) && node.offsetParent !== null;
  const typing = "textarea, select, a, [contenteditable=true], input:not([type=radio]):not([type=range])";
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing || event.target.closest?.(typing)) {
      return;
    }
    const choices = document.querySelectorAll("#portal-choice input[type=radio]");
    const index = event.key.length === 1 ? "1234".indexOf(event.key) : -1;
    const submit = document.querySelector("#portal-submit");
    if (index >= 0 && shown(choices[index])) {
      choices[index].click();
      event.preventDefault();
    } else if (event.key === "Enter" && !event.target.closest?.("button") && shown(submit)) {
      submit.click();
      event.preventDefault();
    }
  });
  document.addEventListener("click", (event) => {
    if (event.target.closest?.("#portal-submit, #portal-skip, #portal-back")) {
      window.scrollTo({top: 0, behavior: "smooth"});
    }
  });
}
