// The demo page: reads two photos, posts them to this service's POST /compare with the typed
// key (x-api-key header), and draws the answer. Nothing is kept: no storage, no cookies; the
// photos live in this page's memory until it is closed.
"use strict";

const ROLES = ["probe", "reference"];
// Keys of an answer's face that say where it is; every other key is a trust figure, shown as is.
const GEOMETRY_KEYS = new Set(["box", "landmarks"]);

const $ = (id) => document.getElementById(id);

function readAsDataURL(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

function clearOverlays(role) {
  $(`${role}-frame`).querySelectorAll(".box, .landmark").forEach((node) => node.remove());
}

async function showPhoto(role) {
  clearOverlays(role);
  const file = $(`${role}-file`).files[0];
  const img = $(`${role}-photo`);
  if (!file) {
    img.removeAttribute("src");
    return null;
  }
  const dataURL = await readAsDataURL(file);
  img.src = dataURL;
  img.alt = `photo ${role}`;
  await img.decode().catch(() => {});  // a file the browser cannot show is still sent: the service decides
  return dataURL;
}

// Positions in % of the photo's own pixels, so the overlay follows the photo's displayed size.
function place(node, x, y, width, height) {
  const img = node.parentElement.querySelector("img");
  node.style.left = `${(100 * x) / img.naturalWidth}%`;
  node.style.top = `${(100 * y) / img.naturalHeight}%`;
  if (width !== undefined) {
    node.style.width = `${(100 * width) / img.naturalWidth}%`;
    node.style.height = `${(100 * height) / img.naturalHeight}%`;
  }
}

function drawFace(role, face) {
  const frame = $(`${role}-frame`);
  if (!frame.querySelector("img").naturalWidth) return;
  if (face.box) {
    const [x1, y1, x2, y2] = face.box;
    const box = document.createElement("div");
    box.className = "box";
    frame.appendChild(box);
    place(box, x1, y1, x2 - x1, y2 - y1);
  }
  for (const [x, y] of face.landmarks || []) {
    const dot = document.createElement("div");
    dot.className = "landmark";
    frame.appendChild(dot);
    place(dot, x, y);
  }
}

// Values as the service sent them (it rounds each to what it means), whatever their key.
function formatValue(value) {
  if (value === null || value === undefined) return "n/a";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function definitionList(entries) {
  const list = document.createElement("dl");
  for (const [key, value] of entries) {
    const term = document.createElement("dt");
    term.textContent = key.replaceAll("_", " ");
    const detail = document.createElement("dd");
    detail.textContent = formatValue(value);
    detail.dataset.key = key;
    list.append(term, detail);
  }
  return list;
}

function showResult(answer, threshold) {
  $("decision").textContent = answer.is_match ? "Match" : "No match";
  $("decision").className = answer.is_match ? "match" : "no-match";
  $("score").textContent = answer.score.toFixed(3);
  $("threshold-used").textContent = threshold === null ? "(threshold: the server's default)" : `(threshold ${threshold})`;
  $("score-meaning").textContent = answer.score_meaning ? `The score means: ${answer.score_meaning}.` : "";
  const within = answer.within_calibration;
  $("calibration").textContent = within === undefined ? ""
    : within ? "Within calibration: this pair is like the pairs the score's meaning was measured on."
      : "Outside calibration: the score's meaning was not measured on pairs like this one.";
  $("calibration").className = within === false ? "warning" : "";
  const notes = $("calibration-notes");
  notes.replaceChildren(...(answer.calibration_notes || []).map((note) => {
    const item = document.createElement("li");
    item.textContent = note;
    return item;
  }));
  const faces = $("faces");
  faces.replaceChildren();
  (answer.faces || []).forEach((face, index) => {
    const role = ROLES[index];
    drawFace(role, face);
    const block = document.createElement("div");
    block.className = "face";
    block.id = `${role}-trust`;
    const title = document.createElement("h3");
    title.textContent = `Photo ${index + 1} (${role})`;
    block.append(title, definitionList(Object.entries(face).filter(([key]) => !GEOMETRY_KEYS.has(key))));
    faces.appendChild(block);
  });
  $("result").hidden = false;
}

function showError(status, body) {
  $("error-status").textContent = String(status);
  $("error-code").textContent = body.code;
  $("error-message").textContent = body.message;
  $("error-metadata").replaceChildren(...definitionList(Object.entries(body.metadata || {})).childNodes);
  $("error").hidden = false;
}

async function compare(event) {
  event.preventDefault();
  $("result").hidden = true;
  $("error").hidden = true;
  ROLES.forEach(clearOverlays);
  const [probe, reference] = await Promise.all(ROLES.map(showPhoto));
  const body = { face_base_64: probe, ref_face_base_64: reference };
  const threshold = $("threshold").value === "" ? null : Number($("threshold").value);
  if (threshold !== null) body.min_similarity_score = threshold;
  if ($("search-mode").value) body.search_mode = $("search-mode").value;
  const headers = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) headers["x-api-key"] = key;

  $("compare-button").disabled = true;
  $("status").textContent = "Comparing...";
  try {
    const response = await fetch(new URL("compare", document.baseURI), {
      method: "POST", headers, body: JSON.stringify(body), cache: "no-store", credentials: "omit",
    });
    const answer = await response.json().catch(() => null);
    if (answer === null) $("status").textContent = `HTTP ${response.status}: the answer is not JSON`;
    else if (response.ok) showResult(answer, threshold);
    else showError(response.status, answer);
    if (answer !== null) $("status").textContent = "";
  } catch (error) {
    $("status").textContent = `The service could not be reached: ${error.message}`;
  } finally {
    $("compare-button").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("compare-form").addEventListener("submit", compare);
  ROLES.forEach((role) => $(`${role}-file`).addEventListener("change", () => showPhoto(role)));
});
