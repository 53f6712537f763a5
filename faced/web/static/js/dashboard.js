// The dashboard (/dashboard): chat, activity, timeline, controls, live tracking and system
// panels around a live face. This entry point only builds the panels (dashboard/*.js, each
// owning its part of the page and its state) and routes the viewer socket's messages to
// them. Writes carry the API key (dashboard/api.js); a 401/403 asks for it once and retries.

import { startViewer } from "./viewer.js";
import { Activity } from "./dashboard/activity.js";
import { Api } from "./dashboard/api.js";
import { Chat } from "./dashboard/chat.js";
import { Controls } from "./dashboard/controls.js";
import { byId } from "./dashboard/dom.js";
import { Notice } from "./dashboard/notice.js";
import { PersonPanel } from "./dashboard/person.js";
import { FacePicker } from "./dashboard/presets.js";
import { StatusBar } from "./dashboard/status.js";
import { SystemPanel } from "./dashboard/system.js";
import { TakesPanel } from "./dashboard/takes.js";
import { Timeline } from "./dashboard/timeline.js";
import { TrackingPanel } from "./dashboard/tracking.js";

function startDashboard() {
  const notice = new Notice();
  const api = new Api(notice);
  const status = new StatusBar();
  const controls = new Controls(api);
  const faces = new FacePicker(api, notice);
  const activity = new Activity();
  const timeline = new Timeline();
  const system = new SystemPanel(api);
  const tracking = new TrackingPanel(api, () => system.cameraStatus);
  const person = new PersonPanel(api);
  const takes = new TakesPanel(api);
  new Chat(api);

  function onMessage(message) {
    status.counted();
    const now = Date.now();
    const type = message.type ?? "state";
    if (type === "history") {
      const entries = Array.isArray(message.entries) ? message.entries : [];
      activity.history(entries);
      timeline.history(entries);
      return;
    }
    activity.show(message, now);
    if (type === "state") {
      if (message.state) timeline.state(message.state, now);
      status.show(message);
      controls.show(message);
    } else if (type === "config") {
      faces.show(message.face);
    }
  }

  const params = new URLSearchParams(location.search);
  params.delete("face"); // the dashboard shows what the viewers show
  const viewer = startViewer(byId("face"), {
    params,
    audio: false,
    bubble: byId("bubble"),
    onMessage,
    onStatus(state) {
      status.connected(state === "open");
      if (state === "open") faces.load();
    },
  });
  tracking.start();
  person.start();
  takes.start();
  system.start();
  timeline.start();
  return viewer;
}

window.faced = startDashboard();
