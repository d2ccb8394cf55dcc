// One press sends a form once: the button is disabled while the answer comes, so a
// double click does not book twice. The page works the same without this script.
document.addEventListener("submit", (event) => {
  const button = event.target.querySelector("button[type=submit]");
  if (button) {
    window.setTimeout(() => { button.disabled = true; }, 0);
  }
});
