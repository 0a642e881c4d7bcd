// Large text for classroom projectors: a toggle, remembered across reloads, and `?large=1` (or
// `?large=0`) in the address so a teacher can bookmark the projector's view.

export function setupLargeText(button: HTMLButtonElement): void {
  const set = (on: boolean): void => {
    document.documentElement.classList.toggle("large-text", on);
    button.setAttribute("aria-pressed", String(on));
    localStorage.setItem("studio.largeText", on ? "1" : "0");
  };
  const asked = new URLSearchParams(location.search).get("large");
  set(asked !== null ? asked === "1" : localStorage.getItem("studio.largeText") === "1");
  button.addEventListener("click", () => set(button.getAttribute("aria-pressed") !== "true"));
}
