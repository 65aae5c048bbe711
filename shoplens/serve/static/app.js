// shoplens shopper page: state, API calls and events; rendering lives in ui.js. No build step.
import { $, renderResults, renderFacets, renderChips, renderPager, renderStatus, renderSkeleton,
         openWhy, closeWhy, openDetail, formatPrice } from "./ui.js";

const PAGE_SIZE = 24;
const MAX_PHOTO_BYTES = 12 * 1024 * 1024;
const state = { q: "", filters: [], page: 1, similar: null, photo: null, photoUrl: null, last: null };
let requestSeq = 0;

// ---- identity for events: a random id per browser, one per tab session (pseudonymised server-side)
function randomId() { return crypto.getRandomValues(new Uint32Array(4)).join("-"); }
function stored(storage, key) {
  try { let v = storage.getItem(key); if (!v) { v = randomId(); storage.setItem(key, v); } return v; }
  catch { return randomId(); }
}
const user = stored(localStorage, "shoplens-user");
const session = stored(sessionStorage, "shoplens-session");

export function sendEvents(events) {
  if (!events.length) return;
  const body = JSON.stringify({ events: events.map((e) => ({ user, session, ...e })) });
  fetch("/events", { method: "POST", headers: { "Content-Type": "application/json" }, body, keepalive: true })
    .catch(() => {});  // analytics must never disturb shopping
}

// ---- URL <-> state (text searches and "more like this" are shareable links; photos are not)
function readUrl() {
  const p = new URLSearchParams(location.search);
  state.q = p.get("q") || "";
  state.filters = p.getAll("f");
  state.page = Math.max(1, parseInt(p.get("page") || "1", 10) || 1);
  state.similar = p.get("similar");
  $("#q").value = state.q;
}
function writeUrl(push) {
  const p = new URLSearchParams();
  if (state.similar) p.set("similar", state.similar);
  else if (state.q) p.set("q", state.q);
  state.filters.forEach((f) => p.append("f", f));
  if (state.page > 1) p.set("page", String(state.page));
  const url = p.toString() ? `/?${p}` : "/";
  if (url !== location.pathname + location.search) history[push ? "pushState" : "replaceState"](null, "", url);
}

// ---- API
class ApiError extends Error {
  constructor(status, message, retryAfter) { super(message); this.status = status; this.retryAfter = retryAfter; }
}
async function api(url, options = {}) {
  let res;
  try { res = await fetch(url, options); }
  catch { throw new ApiError(0, "Cannot reach the shop right now. Check your connection and try again."); }
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const msg = body?.error?.message || `The server answered ${res.status}.`;
    throw new ApiError(res.status, msg, parseInt(res.headers.get("Retry-After") || "0", 10));
  }
  return body;
}

function searchRequest() {
  const size = PAGE_SIZE, page = state.page;
  if (state.similar) {
    const p = new URLSearchParams({ page, size, explain: "true" });
    state.filters.forEach((f) => p.append("filter", f));
    return [`/products/${encodeURIComponent(state.similar)}/similar?${p}`, {}];
  }
  if (state.photo) {
    const form = new FormData();
    form.append("image", state.photo, state.photo.name || "photo");
    form.append("q", state.q); form.append("page", page); form.append("size", size); form.append("explain", "true");
    state.filters.forEach((f) => form.append("filter", f));
    return ["/search/image", { method: "POST", body: form }];
  }
  const body = JSON.stringify({ q: state.q, filters: state.filters, page, size, explain: true, user });
  return ["/search", { method: "POST", headers: { "Content-Type": "application/json" }, body }];
}

export async function run({ push = true, retried = false } = {}) {
  closeWhy();
  writeUrl(push);
  renderChips(state, removeFilter, clearFilters);
  $("#photo-query").hidden = !state.photo;
  const landing = !state.q && !state.photo && !state.similar;
  document.body.classList.toggle("landing", landing);
  if (landing) { renderLanding(); return; }
  const seq = ++requestSeq;
  renderSkeleton(8);
  try {
    const [url, options] = searchRequest();
    const data = await api(url, options);
    if (seq !== requestSeq) return;  // a newer search was started meanwhile
    state.last = data;
    $("#open-filters").hidden = false;
    const title = await headingFor();
    renderResults(data, { title, onOpen: openProduct, onMore: moreLikeThis, onWhy: openWhy });
    renderFacets(data.facets, state.filters, toggleFacet);
    renderPager(data, goToPage);
    $("#price-facet").hidden = !data.results.some((r) => r.price !== null);
    sendEvents(data.results.map((r) => ({ type: "impression", product_id: r.id, position: r.rank,
                                          query: state.q || undefined })));
  } catch (err) {
    if (seq !== requestSeq) return;
    if (err.status === 503 && !retried) {  // the server sheds load: wait as told, then try once more
      renderStatus("busy", "The shop is very busy — retrying in a moment…");
      setTimeout(() => run({ push: false, retried: true }), 1000 * Math.min(5, err.retryAfter || 1));
      return;
    }
    $("#summary").textContent = ""; renderFacets({}, state.filters, toggleFacet); $("#price-facet").hidden = true;
    if (state.photo && [400, 413, 415].includes(err.status)) {  // the photo itself is the problem
      state.photo = null; $("#photo-query").hidden = true;
      $("#heading").textContent = "We could not use that photo";
      renderStatus("error", friendly(err), () => $("#file").click(), { retryLabel: "Choose another photo" });
      return;
    }
    renderStatus("error", friendly(err), () => run({ push: false }));
  }
}

function friendly(err) {
  if (err.status === 415) return "That file is not a photo we can read. Try a JPEG, PNG or WebP image.";
  if (err.status === 413) return "That photo is too large. Try one under 12 MB.";
  if (err.status === 404 && state.similar) return "That product is no longer available.";
  return err.message;
}

async function headingFor() {
  if (state.similar) {
    try { const p = await api(`/products/${encodeURIComponent(state.similar)}`); return `More like ${p.title || p.id}`; }
    catch { return "More like this"; }
  }
  if (state.photo) return state.q ? `Photo matches for “${state.q}”` : "Products like your photo";
  return `Results for “${state.q}”`;
}

function renderLanding() {
  $("#heading").textContent = "Fresh groceries, found by words or by photo";
  $("#summary").textContent = "Type in English or 中文, or drop a photo of what you are looking for.";
  $("#grid").replaceChildren(); $("#pager").replaceChildren(); $("#facets").replaceChildren();
  $("#price-facet").hidden = true; $("#open-filters").hidden = true;
  renderStatus("landing", null, null, { suggestions: ["apple juice", "牛奶", "oat milk", "番茄", "red pepper", "yoghurt"],
    onSuggest: (s) => { $("#q").value = s; newSearch(); }, onPick: () => $("#file").click() });
}

// ---- actions
function newSearch() {
  state.q = $("#q").value.trim(); state.page = 1; state.similar = null; state.filters = [];
  run();
}
function goToPage(page) { state.page = page; run(); window.scrollTo({ top: 0, behavior: "smooth" }); }
function moreLikeThis(product) {
  sendEvents([{ type: "click", product_id: product.id, position: product.rank, query: state.q || undefined }]);
  state.similar = product.id; state.photo = null; state.filters = []; state.page = 1;
  run(); window.scrollTo({ top: 0, behavior: "smooth" });
}
function openProduct(product) {
  sendEvents([{ type: "click", product_id: product.id, position: product.rank, query: state.q || undefined }]);
  openDetail(product, {
    onCart: () => sendEvents([{ type: "cart", product_id: product.id, query: state.q || undefined }]),
    onMore: () => { $("#detail").close(); moreLikeThis(product); },
  });
}

function facetField(filter) { return filter.split(/\s*(?:=| in )\s*/)[0]; }
function facetValues(filter) {
  const m = filter.match(/^[^=]+?\s+in\s+\[(.*)\]$/);
  return m ? m[1].split(",").map((s) => s.trim()) : [filter.slice(filter.indexOf("=") + 1)];
}
function toggleFacet(field, value, on) {
  const current = state.filters.filter((f) => facetField(f) === field && !/[<>]/.test(f)).flatMap(facetValues);
  const values = on ? [...new Set([...current, value])] : current.filter((v) => v !== value);
  state.filters = state.filters.filter((f) => facetField(f) !== field || /[<>]/.test(f));
  if (values.length === 1) state.filters.push(`${field}=${values[0]}`);
  else if (values.length > 1) state.filters.push(`${field} in [${values.join(", ")}]`);
  state.page = 1; run();
}
function removeFilter(filter) { state.filters = state.filters.filter((f) => f !== filter); state.page = 1; run(); }
function clearFilters() { state.filters = []; state.page = 1; run(); }

function setPhoto(file) {
  if (!file) return;
  if (file.size > MAX_PHOTO_BYTES) { renderStatus("error", "That photo is too large. Try one under 12 MB."); return; }
  if (state.photoUrl) URL.revokeObjectURL(state.photoUrl);
  state.photo = file; state.photoUrl = URL.createObjectURL(file);
  state.similar = null; state.page = 1; state.filters = []; state.q = ""; $("#q").value = "";
  $("#photo-thumb").src = state.photoUrl;
  $("#photo-name").textContent = file.name || "";
  run();
}

// ---- wiring
function wire() {
  $("#search-form").addEventListener("submit", (e) => { e.preventDefault(); newSearch(); });
  $("#camera").addEventListener("click", () => $("#file").click());
  $("#file").addEventListener("change", (e) => { setPhoto(e.target.files[0]); e.target.value = ""; });
  $("#photo-clear").addEventListener("click", () => { state.photo = null; state.page = 1; run(); });
  $("#clear-filters").addEventListener("click", clearFilters);
  $("#open-filters").addEventListener("click", () => document.body.classList.add("filters-open"));
  const closeFilters = () => document.body.classList.remove("filters-open");
  $("#close-filters").addEventListener("click", closeFilters);
  $("#scrim").addEventListener("click", closeFilters);
  $("#detail-close").addEventListener("click", () => $("#detail").close());
  $("#price-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.filters = state.filters.filter((f) => !/^price\s*[<>]/.test(f));
    const lo = $("#price-min").value, hi = $("#price-max").value;
    if (lo !== "") state.filters.push(`price>=${Number(lo)}`);
    if (hi !== "") state.filters.push(`price<=${Number(hi)}`);
    state.page = 1; run();
  });
  let depth = 0;  // dragenter/leave fire for every child element: count them
  const overlay = $("#drop-overlay");
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes("Files");
  window.addEventListener("dragenter", (e) => { if (hasFiles(e)) { depth++; overlay.hidden = false; } });
  window.addEventListener("dragleave", () => { depth = Math.max(0, depth - 1); if (!depth) overlay.hidden = true; });
  window.addEventListener("dragover", (e) => { if (hasFiles(e)) e.preventDefault(); });
  window.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault(); depth = 0; overlay.hidden = true;
    setPhoto(e.dataTransfer.files[0]);
  });
  window.addEventListener("paste", (e) => {
    const file = [...(e.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
    if (file) setPhoto(file);
  });
  window.addEventListener("popstate", () => { readUrl(); state.photo = null; run({ push: false }); });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeWhy(); });
  document.addEventListener("click", (e) => { if (!e.target.closest(".popover, .why-btn")) closeWhy(); });
}

wire();
readUrl();
run({ push: false });
export { state, formatPrice };
