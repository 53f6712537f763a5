// The dashboard's notice line (#notice): one message at a time, an error for 8 s, a
// confirmation for 2.5 s. Owns the box and its hide timer.

import { byId } from "./dom.js";

const ERROR_MS = 8000;
const OK_MS = 2500;

export class Notice {
  constructor(box = byId("notice")) {
    this.box = box;
    this._timer = 0;
  }

  show(text, ok = false) {
    this.box.textContent = text;
    this.box.classList.toggle("ok", ok);
    this.box.hidden = false;
    clearTimeout(this._timer);
    this._timer = setTimeout(() => { this.box.hidden = true; }, ok ? OK_MS : ERROR_MS);
  }
}
