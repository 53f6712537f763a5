// Entry point of the viewer page (/). Owner: the viewer.
import { startViewer } from "./viewer.js";

window.faced = startViewer(document.getElementById("face"), {
  bubble: document.getElementById("bubble"),
});
