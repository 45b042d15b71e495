/**
 * Rich display in the worker: values → MIME bundles, the way Deno's own kernel does it
 * (`Symbol.for("Jupyter.display")`, images by their magic bytes, DataFrame-like, Vega-like,
 * canvas-like and element-like values), so notebook code written for `deno jupyter` renders
 * the same here.
 *
 * Every function in this module is copied into the worker's source by its text
 * (runtime.ts explains why): each is a self-contained function declaration that uses only
 * globals and the other functions of display.ts and runtime.ts.
 */

// deno-lint-ignore-file no-explicit-any

export type Bundle = Record<string, unknown>;

/** The protocol symbol: an object with a method under it displays as the bundle it returns. */
export function displaySymbol(): symbol {
  return Symbol.for("Jupyter.display");
}

/** Plain text of any value, as Deno's REPL shows it (no colours: every frontend can show it). */
export function inspectValue(value: unknown): string {
  return Deno.inspect(value, { colors: false, depth: 4, iterableLimit: 100, strAbbreviateSize: 10000 });
}

export function isPng(b: unknown): b is Uint8Array {
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  return b instanceof Uint8Array && b.length >= 8 && sig.every((v, i) => b[i] === v);
}

export function isJpg(b: unknown): b is Uint8Array {
  return b instanceof Uint8Array && b.length >= 4 && b[0] === 0xff && b[1] === 0xd8 &&
    b[b.length - 2] === 0xff && b[b.length - 1] === 0xd9;
}

export function base64(bytes: Uint8Array): string {
  const anyBytes = bytes as any;
  if (typeof anyBytes.toBase64 === "function") return anyBytes.toBase64();
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000) as unknown as number[]);
  }
  return btoa(text);
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** An object that displays as `bundle`. */
export function displayable(bundle: Bundle): Record<symbol, () => Bundle> {
  return { [displaySymbol()]: () => bundle };
}

/** A tagged template that makes a displayable of one MIME type (html`…`, md`…`, svg`…`). */
export function taggedTemplate(mime: string): (strings: TemplateStringsArray, ...values: unknown[]) => object {
  return (strings, ...values) => {
    let text = "";
    strings.forEach((s, i) => {
      text += s;
      if (i < values.length && values[i] !== undefined) text += String(values[i]);
    });
    return displayable({ [mime]: text });
  };
}

/** image(bytes | path): a PNG or JPEG (by its magic bytes) as a displayable. */
export function imageDisplayable(source: unknown): object {
  let bytes = source;
  if (typeof source === "string") {
    try {
      bytes = Deno.readFileSync(source);
    } catch (err) {
      throw new TypeError(`image(): cannot read ${JSON.stringify(source)}: ${(err as Error).message}`);
    }
  } else if (source instanceof ArrayBuffer) bytes = new Uint8Array(source);
  if (isPng(bytes)) return displayable({ "image/png": base64(bytes) });
  if (isJpg(bytes)) return displayable({ "image/jpeg": base64(bytes) });
  throw new TypeError("image() takes the bytes of a PNG or JPEG image, or the path of one");
}

export function isDataFrameLike(v: any): boolean {
  return v !== null && typeof v === "object" && typeof v.schema === "object" && v.schema !== null &&
    typeof v.head === "function" && typeof v.toRecords === "function";
}

/** A polars-like DataFrame as an HTML table (first rows) and a Table Schema data resource. */
export function dataFrameBundle(df: any): Bundle {
  const jsonType = (t: any): string => {
    let name = "";
    try {
      name = String(t?.toJSON?.()?.DataType ?? t?.variant ?? t ?? "");
    } catch {
      name = String(t);
    }
    if (/^(U?Int\d+)$/.test(name)) return "integer";
    if (/^Float\d+$/.test(name)) return "number";
    if (name === "Bool" || name === "Boolean") return "boolean";
    if (name === "List") return "array";
    if (name === "Struct") return "object";
    return "string";
  };
  const fields = Object.entries(df.schema).map(([name, t]) => ({ name, type: jsonType(t) }));
  const rows: any[] = df.head(50).toRecords();
  let html = "<table><thead><tr>";
  for (const f of fields) html += `<th>${escapeHtml(String(f.name))}</th>`;
  html += "</tr></thead><tbody>";
  for (const row of rows.slice(0, 10)) {
    html += "<tr>";
    for (const f of fields) html += `<td>${escapeHtml(String(row[f.name]))}</td>`;
    html += "</tr>";
  }
  html += "</tbody></table>";
  let plain: string;
  try {
    plain = String(df.toString());
  } catch {
    plain = inspectValue(df);
  }
  return {
    "text/plain": plain,
    "text/html": html,
    "application/vnd.dataresource+json": { schema: { fields }, data: rows },
  };
}

/** A value's MIME bundle; a Promise when the value's own display method returns one. */
export function formatValue(value: any): Bundle | Promise<Bundle> {
  const sym = displaySymbol();
  if (value !== null && (typeof value === "object" || typeof value === "function") && typeof value[sym] === "function") {
    const out = value[sym]();
    return out instanceof Promise ? out.then(checkBundle) : checkBundle(out);
  }
  if (value === null || typeof value !== "object") return { "text/plain": inspectValue(value) };
  if (typeof value.mimebundle === "function") return checkBundle(value.mimebundle()); // widgets (sdk/js)
  if (typeof value.toDataURL === "function") {
    const url = String(value.toDataURL());
    const m = /^data:([^;,]+)(;base64)?,(.*)$/s.exec(url);
    if (m) return { [m[1]]: m[3], "text/plain": inspectValue(value) };
  }
  if (typeof value.toSpec === "function") {
    const spec = value.toSpec();
    if (spec && typeof spec === "object" && "$schema" in spec) {
      const schema = String(spec.$schema);
      const mime = schema.includes("vega-lite/v4")
        ? "application/vnd.vegalite.v4+json"
        : schema.includes("vega-lite/v5")
        ? "application/vnd.vegalite.v5+json"
        : "application/vnd.vega.v5+json";
      return { [mime]: spec, "text/plain": inspectValue(value) };
    }
  }
  if (isDataFrameLike(value)) return dataFrameBundle(value);
  if (isPng(value)) return { "image/png": base64(value), "text/plain": `<PNG image, ${value.length} bytes>` };
  if (isJpg(value)) return { "image/jpeg": base64(value), "text/plain": `<JPEG image, ${value.length} bytes>` };
  if (typeof value.outerHTML === "string") {
    const mime = value.outerHTML.startsWith("<svg") ? "image/svg+xml" : "text/html";
    return { [mime]: value.outerHTML, "text/plain": inspectValue(value) };
  }
  return { "text/plain": inspectValue(value) };
}

/** A display method must return a MIME bundle: an object of MIME type → data. */
export function checkBundle(bundle: unknown): Bundle {
  if (bundle === null || typeof bundle !== "object" || Array.isArray(bundle)) {
    throw new TypeError(`a display method must return a MIME bundle (an object), not ${inspectValue(bundle)}`);
  }
  return bundle as Bundle;
}

/** display()'s bundle: a raw bundle when asked (Deno's `raw: true`), else the value's own. */
export function bundleFor(value: unknown, raw: boolean): Bundle | Promise<Bundle> {
  if (raw) return checkBundle(value);
  return formatValue(value);
}
