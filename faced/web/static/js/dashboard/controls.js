// The controls panel: state and emotion buttons, the intensity and amplitude sliders, the
// look pad, speak and reset. Owns those inputs and what they show of the face's state
// (the active buttons, the intensity, the look dot). Writes go through the Api.

import { EMOTIONS, STATES } from "../protocol.js";
import { byId, element } from "./dom.js";

const SEND_INTERVAL_MS = 100; // sliders and the look pad send at most 10 updates/s
const RESET = {
  state: "idle", emotion: "neutral", emotionSecondary: "neutral", emotionBlend: 0,
  intensity: 1, amplitude: 0, lookAt: { x: 0, y: 0 }, color: null,
  winkLeft: 0, winkRight: 0, progress: null,
};

/** Coalesces rapid updates (sliders, the look pad): the latest wins, 10 per second at most. */
function throttled(send) {
  let pending = null;
  let timer = 0;
  return (value) => {
    pending = value;
    if (timer) return;
    send(pending);
    pending = null;
    timer = setTimeout(function flush() {
      if (pending !== null) {
        send(pending);
        pending = null;
        timer = setTimeout(flush, SEND_INTERVAL_MS);
      } else {
        timer = 0;
      }
    }, SEND_INTERVAL_MS);
  };
}

export class Controls {
  constructor(api) {
    this.api = api;
    this.stateButtons = this._buttons("state-buttons", STATES, "state");
    this.emotionButtons = this._buttons("emotion-buttons", EMOTIONS, "emotion");
    this.intensity = this._slider("intensity");
    this._slider("amplitude");
    this.lookDot = byId("look-dot");
    this._lookPad(byId("look-pad"));
    this._speak(byId("speak-form"), byId("speak-input"));
    byId("reset").addEventListener("click", () => this.postState(RESET));
  }

  postState(update) {
    return this.api.call("POST", "/api/state", update);
  }

  /** Shows a state message from the viewer socket. */
  show(message) {
    markActive(this.stateButtons, "state", message.state);
    markActive(this.emotionButtons, "emotion", message.emotion);
    if (typeof message.intensity === "number") {
      this.intensity.value = message.intensity;
      byId("intensity-value").textContent = message.intensity.toFixed(2);
    }
    if (message.lookAt) this._placeLookDot(message.lookAt.x, message.lookAt.y);
  }

  _buttons(containerId, names, field) {
    const container = byId(containerId);
    for (const name of names) {
      const button = element("button", "", name);
      button.type = "button";
      button.dataset[field] = name;
      button.addEventListener("click", () => this.postState({ [field]: name }));
      container.append(button);
    }
    return container;
  }

  _slider(field) {
    const slider = byId(field);
    const send = throttled((value) => this.postState({ [field]: value }));
    slider.addEventListener("input", () => {
      byId(`${field}-value`).textContent = Number(slider.value).toFixed(2);
      send(Number(slider.value));
    });
    return slider;
  }

  _placeLookDot(x, y) {
    this.lookDot.style.left = `${(x + 1) * 50}%`;
    this.lookDot.style.top = `${(y + 1) * 50}%`;
  }

  _lookPad(pad) {
    const sendLook = throttled((look) => this.postState({ lookAt: look }));
    const lookFromPointer = (event) => {
      const rect = pad.getBoundingClientRect();
      const x = Math.max(-1, Math.min(1, ((event.clientX - rect.left) / rect.width) * 2 - 1));
      const y = Math.max(-1, Math.min(1, ((event.clientY - rect.top) / rect.height) * 2 - 1));
      this._placeLookDot(x, y);
      sendLook({ x: Math.round(x * 100) / 100, y: Math.round(y * 100) / 100 });
    };
    pad.addEventListener("pointerdown", (event) => {
      pad.setPointerCapture(event.pointerId);
      lookFromPointer(event);
    });
    pad.addEventListener("pointermove", (event) => {
      if (pad.hasPointerCapture(event.pointerId)) lookFromPointer(event);
    });
  }

  _speak(form, input) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      if (await this.api.call("POST", "/api/speak", { text })) input.value = "";
    });
  }
}

function markActive(container, field, value) {
  for (const button of container.children) {
    button.classList.toggle("active", button.dataset[field] === value);
  }
}
