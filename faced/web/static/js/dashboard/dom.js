// Small DOM helpers the dashboard's panels share. Owns no state.

export const byId = (id) => document.getElementById(id);

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function clockTime(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}
