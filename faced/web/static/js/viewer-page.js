// Entry point of the viewer page (/): hands the page's elements to viewer.js, which owns
// the rest.
import { startViewer } from "./viewer.js";

window.faced = startViewer(document.getElementById("face"), {
  bubble: document.getElementById("bubble"),
});
