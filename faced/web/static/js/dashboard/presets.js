// The face-pack picker in the header (#face-select): lists the daemon's presets, shows the
// pack in use, and switches every viewer's pack (PUT /api/config). Owns the select.

import { byId, element } from "./dom.js";

export class FacePicker {
  constructor(api, notice) {
    this.api = api;
    this.notice = notice;
    this.select = byId("face-select");
    this.select.addEventListener("change", async (event) => {
      const face = event.target.value;
      if (await this.api.call("PUT", "/api/config", { face })) this.notice.show(`face switched to ${face}`, true);
    });
  }

  async load() {
    const [list, config] = await Promise.all([
      this.api.call("GET", "/api/v1/presets"),
      this.api.call("GET", "/api/config"),
    ]);
    if (!list) return;
    this.select.replaceChildren(...list.presets.map((preset) => {
      const option = element("option", "", preset.name);
      option.value = preset.slug;
      return option;
    }));
    if (config) this.select.value = config.face;
  }

  /** The pack in use changed (a config message on the viewer socket). */
  show(face) {
    this.select.value = face;
  }
}
