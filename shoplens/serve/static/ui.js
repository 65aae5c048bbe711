// shoplens shopper page: rendering (results grid, facets, chips, pager, states, popover, detail).
// Text from the catalogue only ever goes through textContent, never innerHTML.

export const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, cls, text) => {
  const n = document.createElement(tag);
  if (cls) n.className = cls;
  if (text !== undefined && text !== null) n.textContent = text;
  return n;
};
// Icons are constant markup (never catalogue data), so innerHTML is safe here.
const ICONS = {
  search: '<circle cx="11" cy="11" r="6.5"/><path d="M16 16l4.5 4.5"/>',
  camera: '<path d="M4 8h3l2-3h6l2 3h3a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V9a1 1 0 0 1 1-1z"/><circle cx="12" cy="13.5" r="3.5"/>',
  alert: '<path d="M12 3l10 18H2z"/><path d="M12 10v5M12 18v.5"/>',
  clock: '<circle cx="12" cy="12" r="9"/><path d="M12 7v5l3 2"/>',
};
function icon(name, cls = "status-icon") {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", cls);
  svg.innerHTML = ICONS[name];
  return svg;
}
const currency = document.body.dataset.currency || "";
const money = currency ? new Intl.NumberFormat(document.documentElement.lang || undefined, { style: "currency", currency }) : null;
export function formatPrice(p) {
  if (p === null || p === undefined) return "";
  return money ? money.format(p) : p.toFixed(2);
}
export const pretty = (name) => (name.charAt(0).toUpperCase() + name.slice(1)).replace(/_/g, " ");

const SIGNALS = {
  bm25: ["Keyword match", "BM25 score of the query words in the title and description"],
  text: ["Meaning match", "cosine similarity of the query and the product text (multilingual)"],
  image: ["Photo match", "cosine similarity of your photo and the product photos"],
  fused: ["Overall likeness", "text and photo similarity to the product you picked"],
};

function placeholderImg(img) {
  img.removeAttribute("src");
  img.parentElement.classList.add("no-photo");
}

export function renderSkeleton(n) {
  renderStatus(null);
  const grid = $("#grid");
  grid.replaceChildren(...Array.from({ length: n }, () => {
    const li = el("li", "card skeleton");
    li.append(el("div", "card-img"), el("div", "sk-line"), el("div", "sk-line short"));
    return li;
  }));
  grid.setAttribute("aria-busy", "true");
}

export function renderResults(data, { title, onOpen, onMore, onWhy }) {
  $("#heading").textContent = title;
  const first = (data.page - 1) * data.size + 1;
  $("#summary").textContent = data.total
    ? `${first}–${first + data.results.length - 1} of ${data.total.toLocaleString()} products · ${Math.round(data.took_ms)} ms`
    : "";
  const grid = $("#grid");
  grid.removeAttribute("aria-busy");
  if (!data.results.length) {
    grid.replaceChildren();
    renderStatus("empty", data.total ? "No more results on this page." : null);
    return;
  }
  renderStatus(null);
  const tpl = $("#card-tpl");
  grid.replaceChildren(...data.results.map((r) => {
    const card = tpl.content.firstElementChild.cloneNode(true);
    card.dataset.id = r.id;
    const img = $("img", card);
    img.alt = r.title || "Product photo";
    img.addEventListener("error", () => placeholderImg(img));
    if (r.image_url) img.src = r.image_url; else placeholderImg(img);
    $(".card-cat", card).textContent = [r.attributes.top_category, r.category, r.brand].filter(Boolean).join(" · ");
    $(".card-link", card).textContent = r.title || `Product ${r.id}`;
    const tags = $(".card-tags", card);
    Object.entries(r.attributes).filter(([k]) => k !== "top_category").slice(0, 3)
      .forEach(([k, v]) => tags.append(el("span", "tag", `${pretty(k)}: ${v}`)));
    const price = $(".card-price", card);
    price.textContent = r.price === null ? "See in store" : formatPrice(r.price);
    price.classList.toggle("muted", r.price === null);
    for (const sel of [".card-img", ".card-link"]) $(sel, card).addEventListener("click", () => onOpen(r));
    $(".more-btn", card).addEventListener("click", () => onMore(r));
    $(".why-btn", card).addEventListener("click", (e) => { e.stopPropagation(); onWhy(r, e.currentTarget); });
    return card;
  }));
}

export function renderFacets(facets, active, onToggle) {
  const box = $("#facets");
  const activeValues = new Map();
  active.forEach((f) => {
    const m = f.match(/^(.+?)(?:\s+in\s+\[(.*)\]|=(.*))$/);
    if (m) activeValues.set(m[1].trim(), (m[2] !== undefined ? m[2].split(",") : [m[3]]).map((s) => s.trim()));
  });
  const groups = Object.entries(facets || {})
    .filter(([field, counts]) => Object.keys(counts).length > 1 || activeValues.has(field));
  box.replaceChildren(...groups.map(([field, counts]) => {
    const sec = el("section", "facet");
    sec.append(el("h3", null, pretty(field)));
    const list = el("ul", "facet-list");
    const chosen = activeValues.get(field) || [];
    const entries = Object.entries(counts);
    chosen.filter((v) => !(v in counts)).forEach((v) => entries.unshift([v, 0]));
    entries.forEach(([value, n], i) => {
      const li = el("li", i >= 8 ? "extra" : null);
      const label = el("label");
      const box = el("input");
      box.type = "checkbox";
      box.checked = chosen.includes(value);
      box.addEventListener("change", () => onToggle(field, value, box.checked));
      label.append(box, el("span", "facet-value", value), el("span", "count", n ? String(n) : ""));
      li.append(label);
      list.append(li);
    });
    sec.append(list);
    if (entries.length > 8) {
      const more = el("button", "link-btn", `Show all ${entries.length}`);
      more.type = "button";
      more.addEventListener("click", () => { sec.classList.toggle("expanded");
        more.textContent = sec.classList.contains("expanded") ? "Show fewer" : `Show all ${entries.length}`; });
      sec.append(more);
    }
    return sec;
  }));
  if (!groups.length) box.append(el("p", "facets-empty", "No filters for these results."));
  $("#clear-filters").hidden = !active.length;
}

const OPS = [[/^=\s*/, ": "], [/^in \[(.*)\]$/, ": $1"], [/^not in \[(.*)\]$/, " not $1"], [/^!=\s*/, " ≠ "],
             [/^>=\s*/, " ≥ "], [/^<=\s*/, " ≤ "], [/^>\s*/, " > "], [/^<\s*/, " < "]];
function filterLabel(f) {
  const m = f.match(/^\s*([\w.\-]+)\s*(.*)$/);
  if (!m) return f;
  const op = OPS.find(([re]) => re.test(m[2]));
  return pretty(m[1]) + (op ? m[2].replace(op[0], op[1]) : ` ${m[2]}`);
}

export function renderChips(state, onRemove, onClear) {
  const chips = $("#chips");
  chips.replaceChildren(...state.filters.map((f) => {
    const chip = el("button", "chip", filterLabel(f));
    chip.type = "button";
    chip.title = `Remove filter ${f}`;
    chip.append(el("span", "chip-x", "✕"));
    chip.addEventListener("click", () => onRemove(f));
    return chip;
  }));
  if (state.filters.length > 1) {
    const all = el("button", "link-btn", "Clear all");
    all.type = "button";
    all.addEventListener("click", onClear);
    chips.append(all);
  }
}

export function renderPager(data, onPage) {
  const nav = $("#pager");
  nav.replaceChildren();
  if (data.pages <= 1) return;
  const add = (label, page, opts = {}) => {
    const b = el("button", opts.current ? "page current" : "page", label);
    b.type = "button";
    b.disabled = !!opts.disabled || !!opts.current;
    if (opts.current) b.setAttribute("aria-current", "page");
    if (opts.aria) b.setAttribute("aria-label", opts.aria);
    b.addEventListener("click", () => onPage(page));
    nav.append(b);
  };
  const cur = data.page, last = data.pages;
  add("‹ Prev", cur - 1, { disabled: cur <= 1, aria: "Previous page" });
  const shown = new Set([1, last, cur - 1, cur, cur + 1].filter((p) => p >= 1 && p <= last));
  let prev = 0;
  [...shown].sort((a, b) => a - b).forEach((p) => {
    if (p - prev > 1) nav.append(el("span", "gap", "…"));
    add(String(p), p, { current: p === cur });
    prev = p;
  });
  add("Next ›", cur + 1, { disabled: cur >= last, aria: "Next page" });
}

export function renderStatus(kind, message, onRetry, extra = {}) {
  const box = $("#status");
  box.className = kind ? `status status-${kind}` : "";
  box.replaceChildren();
  if (!kind) return;
  if (kind !== "landing") { $("#grid").replaceChildren(); $("#pager").replaceChildren(); }
  if (kind === "empty") {
    box.append(icon("search"), el("h2", null, message || "No products match your search"),
      el("p", null, "Check the spelling, try fewer or more general words, remove a filter, or search with a photo."));
  } else if (kind === "error" || kind === "busy") {
    box.append(icon(kind === "busy" ? "clock" : "alert"),
      el("h2", null, kind === "busy" ? "Just a moment" : "Something went wrong"), el("p", null, message));
    if (onRetry) {
      const b = el("button", "primary-btn", extra.retryLabel || "Try again");
      b.type = "button"; b.addEventListener("click", onRetry); box.append(b);
    }
  } else if (kind === "landing") {
    const drop = el("div", "dropzone");
    drop.append(icon("camera"), el("h2", null, "Search with a photo"),
      el("p", null, "Drag a photo here, paste one, or"));
    const pick = el("button", "primary-btn", "Choose a photo");
    pick.type = "button"; pick.addEventListener("click", extra.onPick); drop.append(pick);
    const sugg = el("div", "suggestions");
    sugg.append(el("span", null, "Popular:"));
    extra.suggestions.forEach((s) => {
      const b = el("button", "chip", s); b.type = "button"; b.addEventListener("click", () => extra.onSuggest(s));
      sugg.append(b);
    });
    box.append(drop, sugg);
  }
}

export function openWhy(r, anchor) {
  const pop = $("#why");
  pop.replaceChildren(el("h3", null, `Why #${r.rank}: ${r.title || r.id}`));
  const rows = el("dl", "why-list");
  Object.entries(r.signals || {}).filter(([k]) => !k.endsWith("_rank")).forEach(([name, score]) => {
    const [label, help] = SIGNALS[name] || [pretty(name), ""];
    const rank = r.signals[`${name}_rank`];
    const dt = el("dt", null, label);
    dt.title = help;
    rows.append(dt, el("dd", null, `${score.toFixed(3)}${rank ? ` · ranked #${rank} by this signal` : ""}`));
  });
  if (!rows.children.length) rows.append(el("dd", null, "No signal details for this result."));
  pop.append(rows, el("p", "why-total", `Combined score ${r.score.toFixed(4)} (reciprocal rank fusion)`));
  const box = anchor.getBoundingClientRect();
  pop.hidden = false;
  const w = pop.offsetWidth;
  pop.style.left = `${Math.max(8, Math.min(window.scrollX + box.right - w, window.scrollX + innerWidth - w - 8))}px`;
  pop.style.top = `${window.scrollY + box.bottom + 8}px`;
}
export function closeWhy() { $("#why").hidden = true; }

export function openDetail(r, { onCart, onMore }) {
  const dlg = $("#detail");
  const img = $("#detail-img");
  img.alt = r.title || "Product photo";
  img.src = r.image_url || "";
  $("#detail-thumbs").replaceChildren(...r.image_urls.map((u) => {
    const t = el("img"); t.src = u; t.alt = ""; t.addEventListener("click", () => { img.src = u; }); return t;
  }));
  $("#detail-cat").textContent = [r.attributes.top_category, r.category, r.brand].filter(Boolean).join(" · ");
  $("#detail-title").textContent = r.title || `Product ${r.id}`;
  $("#detail-price").textContent = r.price === null ? "" : formatPrice(r.price);
  $("#detail-desc").textContent = r.description || "";
  $("#detail-attrs").replaceChildren(...Object.entries(r.attributes).flatMap(([k, v]) =>
    [el("dt", null, pretty(k)), el("dd", null, String(v))]));
  $("#detail-note").textContent = "";
  $("#detail-cart").onclick = () => { onCart(); $("#detail-note").textContent = "Added to your cart."; };
  $("#detail-similar").onclick = onMore;
  dlg.showModal();
}
