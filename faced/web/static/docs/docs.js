// The API browser of /docs: renders /openapi.json (owner: the analyze API).
// No dependencies and no inline script, so the daemon's Content-Security-Policy holds.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const REF_PREFIX = "#/components/schemas/";

// JSON with every $ref turned into a link to its schema below.
function schemaView(schema) {
  const pre = el("pre");
  const text = JSON.stringify(schema, null, 2);
  const pattern = /"\$ref": "#\/components\/schemas\/([^"]+)"/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    pre.append(text.slice(last, match.index));
    pre.append('"$ref": "');
    pre.append(el("a", { href: "#schema-" + match[1] }, REF_PREFIX + match[1]));
    pre.append('"');
    last = match.index + match[0].length;
  }
  pre.append(text.slice(last));
  return pre;
}

function contentView(title, content) {
  const parts = [el("h4", {}, title)];
  for (const [media, body] of Object.entries(content || {})) {
    parts.push(el("div", {}, el("code", {}, media)));
    if (body && body.schema) parts.push(schemaView(body.schema));
  }
  return parts;
}

function operationView(path, method, op) {
  const socket = op["x-faced-websocket"];
  const access = op["x-faced-access"] || "public";
  const body = el("div", { class: "op-body" });
  if (op.description) body.append(el("p", {}, op.description));
  if (op.parameters && op.parameters.length) {
    const table = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "schema")));
    for (const p of op.parameters) {
      table.append(el("tr", {}, el("td", {}, p.name), el("td", {}, p.in), el("td", {}, JSON.stringify(p.schema || {}))));
    }
    body.append(el("h4", {}, "Parameters"), table);
  }
  if (op.requestBody) body.append(...contentView("Request body", op.requestBody.content));
  if (socket) {
    if (socket.receives) body.append(el("h4", {}, "Socket: client sends"), schemaView(socket.receives));
    if (socket.sends) body.append(el("h4", {}, "Socket: server sends"), schemaView(socket.sends));
  }
  for (const [status, response] of Object.entries(op.responses || {})) {
    body.append(...contentView(status + " — " + (response.description || ""), response.content));
  }
  const summary = el(
    "summary",
    {},
    el("span", { class: "method " + (socket ? "ws" : method) }, socket ? "WS" : method.toUpperCase()),
    el("span", { class: "path" }, path),
    el("span", { class: "summary" }, op.summary || ""),
    el("span", { class: "access " + access, title: "access class" }, access),
  );
  const details = el("details", { class: "op" }, summary, body);
  details.dataset.search = [path, method, op.summary, (op.tags || []).join(" ")].join(" ").toLowerCase();
  return details;
}

function render(doc) {
  const info = document.getElementById("info");
  info.textContent = `OpenAPI ${doc.openapi} · faced ${doc.info.version} · `;
  info.append(el("a", { href: "/openapi.json" }, "/openapi.json"));
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operationView(path, method, op));
    }
  }
  const main = document.getElementById("operations");
  for (const [tag, views] of byTag) {
    const section = el("section", { class: "tag" }, el("h2", {}, tag), ...views);
    main.append(section);
  }
  const schemas = document.getElementById("schemas");
  for (const [name, schema] of Object.entries(doc.components.schemas || {})) {
    schemas.append(el("h3", { id: "schema-" + name }, name), schemaView(schema));
  }
  document.body.dataset.ready = "true";
}

function applyFilter(text) {
  const needle = text.trim().toLowerCase();
  for (const details of document.querySelectorAll("details.op")) {
    details.classList.toggle("hidden", needle !== "" && !details.dataset.search.includes(needle));
  }
  for (const section of document.querySelectorAll("section.tag")) {
    section.classList.toggle("hidden", !section.querySelector("details.op:not(.hidden)"));
  }
}

document.getElementById("filter").addEventListener("input", (event) => applyFilter(event.target.value));

fetch("/openapi.json")
  .then((response) => {
    if (!response.ok) throw new Error(`/openapi.json answered ${response.status}`);
    return response.json();
  })
  .then(render)
  .catch((error) => {
    const info = document.getElementById("info");
    info.className = "error";
    info.textContent = "Cannot load the API document: " + error.message;
  });
