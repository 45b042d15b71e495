// @ts-self-types="./widgets.d.ts"
/**
 * Jupyter widgets for kernelkit backends on Deno and Node.js: the kernel side of the widget
 * protocol 2.1 (the one ipywidgets 8 speaks), over the comms of kernelkit.js. One
 * dependency-free ES module, next to kernelkit.js. (Why ~640 lines in one file: a backend
 * copies it beside kernelkit.js and imports it with no bundler, so it stays one module.)
 *
 *   import { IntSlider } from "./widgets.js";
 *   const s = new IntSlider({ value: 5, min: 0, max: 10, description: "n" });
 *   ctx.display(s);               // a view of it in the cell
 *   s.observe("value", (change) => ...);   // the frontend moved it; s.value is the new value
 *   s.value = 7;                  // the frontend's views move too
 *
 * Models: those of @jupyter-widgets/controls 2.0.0 and @jupyter-widgets/base 2.0.0 that
 * JupyterLab's widget manager (jupyterlab_widgets 3) renders — IntSlider, Button, Text,
 * Output, their Layout and styles — and anywidget's AnyModel (an `_esm` module of your own).
 * Their states have the keys and defaults ipywidgets 8.1 sends. Importing this module
 * registers the `jupyter.widget.control` comm target, through which a reloaded page gets
 * every live widget's state back.
 *
 * (Why ~630 lines in one file: it is copied next to a backend beside kernelkit.js, so it stays
 * one dependency-free module: the Widget base (state sync, buffers, display) and the models.)
 */
import { comms } from "./kernelkit.js";

export const WIDGET_PROTOCOL_VERSION = "2.1.0";
export const WIDGET_VIEW_MIMETYPE = "application/vnd.jupyter.widget-view+json";
const WIDGET_TARGET = "jupyter.widget";
const CONTROL_TARGET = "jupyter.widget.control";
const BASE = "@jupyter-widgets/base";
const CONTROLS = "@jupyter-widgets/controls";
const OUTPUT = "@jupyter-widgets/output";
/** What anywidget 0.11's Python side sends; its JupyterLab extension registers 0.11.0. */
export const ANYWIDGET_VERSION = "~0.11.*";

/** The widgets whose comms are open, by model id (= comm id), in the order they were made. */
const live = new Map();

/** A widget made by this module, by model id, while its comm is open. */
export function getWidget(modelId) {
  return live.get(modelId);
}

/** Every live widget (layouts and styles included). */
export function widgets() {
  return [...live.values()];
}

// -- state (de)serialization ------------------------------------------------------------

const isBinary = (v) => v instanceof ArrayBuffer || ArrayBuffer.isView(v);
const isPlainObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v) && !isBinary(v) && !(v instanceof Widget);

/** JSON-ready state: widgets become "IPY_MODEL_<id>" references, as ipywidgets sends them. */
function serialize(value) {
  if (value instanceof Widget) return `IPY_MODEL_${value.modelId}`;
  if (Array.isArray(value)) return value.map(serialize);
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, serialize(v)]));
  return value;
}

/**
 * Binary values taken out of a state into buffers, with their paths (as ipywidgets'
 * _remove_buffers does: a dict loses the key, a list keeps a null in its place).
 */
export function removeBuffers(state) {
  const buffers = [];
  const paths = [];
  const walk = (value, path) => {
    if (Array.isArray(value)) {
      return value.map((v, i) => {
        if (isBinary(v)) {
          buffers.push(v);
          paths.push([...path, i]);
          return null;
        }
        return v !== null && typeof v === "object" ? walk(v, [...path, i]) : v;
      });
    }
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      if (isBinary(v)) {
        buffers.push(v);
        paths.push([...path, k]);
      } else {
        out[k] = v !== null && typeof v === "object" ? walk(v, [...path, k]) : v;
      }
    }
    return out;
  };
  return { state: walk(state, []), buffer_paths: paths, buffers };
}

/** The frontend's buffers put back into its state at their paths. */
export function putBuffers(state, paths, buffers) {
  if (!Array.isArray(paths)) throw new TypeError("buffer_paths must be an array");
  paths.forEach((path, i) => {
    if (!Array.isArray(path) || path.length === 0) throw new TypeError(`buffer_paths[${i}] must be a non-empty array`);
    if (i >= buffers.length) throw new TypeError(`buffer_paths[${i}] has no buffer (${buffers.length} sent)`);
    let obj = state;
    for (const key of path.slice(0, -1)) {
      obj = obj?.[key];
      if (obj === null || typeof obj !== "object") throw new TypeError(`buffer_paths[${i}] ${JSON.stringify(path)} leads nowhere`);
    }
    obj[path[path.length - 1]] = buffers[i];
  });
  return state;
}

function same(a, b) {
  if (a === b) return true;
  if (isBinary(a) && isBinary(b)) {
    const x = new Uint8Array(a.buffer ?? a, a.byteOffset ?? 0, a.byteLength);
    const y = new Uint8Array(b.buffer ?? b, b.byteOffset ?? 0, b.byteLength);
    return x.length === y.length && x.every((v, i) => v === y[i]);
  }
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (a instanceof Widget || b instanceof Widget) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => k in b && same(a[k], b[k]));
}

function modelKeys(modelModule, modelName, modelVersion, viewModule, viewName, viewVersion) {
  return {
    _model_module: modelModule, _model_module_version: modelVersion, _model_name: modelName,
    _view_count: null,
    _view_module: viewModule, _view_module_version: viewVersion, _view_name: viewName,
  };
}

// -- the widget base class ------------------------------------------------------------------

/**
 * A widget model in the kernel, mirrored by a model in the frontend through a comm. Each state
 * key is also a property (`w.value`, `w.value = 7`) unless the class already has that name;
 * `get`/`set` always work.
 */
export class Widget {
  #state;
  #comm;
  #observers = new Map(); // key name or "*" -> callbacks
  #custom = [];
  #owned;
  #defaults;

  /**
   * `state` is the model's whole state, `_model_name` and the other model keys included.
   * `owned`: widgets closed with this one (the layout and style it made for itself);
   * `defaults`: the class's default state, so that the text form shows what differs.
   */
  constructor(state, { owned = [], defaults = {} } = {}) {
    if (!isPlainObject(state)) throw new TypeError("a widget's state must be an object");
    for (const key of ["_model_name", "_model_module", "_model_module_version"]) {
      if (typeof state[key] !== "string") throw new TypeError(`a widget's state needs ${key} (a string)`);
    }
    this.#state = { ...state };
    this.#owned = owned;
    this.#defaults = defaults;
    for (const key of Object.keys(this.#state)) {
      if (key in this) continue; // a method or property of the class wins; get/set reach the key
      Object.defineProperty(this, key, {
        get: () => this.#state[key],
        set: (value) => this.set(key, value),
        enumerable: true,
      });
    }
    const { state: wire, buffer_paths, buffers } = removeBuffers(serialize(this.#state));
    this.#comm = comms.open(WIDGET_TARGET, { state: wire, buffer_paths }, {
      metadata: { version: WIDGET_PROTOCOL_VERSION }, buffers,
    });
    /** The model id, which is also its comm id. */
    this.modelId = this.#comm.commId;
    live.set(this.modelId, this);
    this.#comm.onMsg((msg) => this.#handle(msg));
    this.#comm.onClose(() => live.delete(this.modelId));
  }

  /** True once the widget is closed (by `close()` or by the frontend). */
  get closed() {
    return this.#comm.closed;
  }

  get(name) {
    return this.#state[name];
  }

  /** A copy of the whole state (widgets in it as themselves). */
  getState() {
    return { ...this.#state };
  }

  /**
   * Set one key (`set("value", 7)`) or several (`set({ min: 0, max: 5 })`): the frontend
   * gets one update with what changed, then change observers run.
   */
  set(nameOrState, value) {
    const updates = typeof nameOrState === "string" ? { [nameOrState]: value } : nameOrState;
    if (!isPlainObject(updates)) throw new TypeError("set() takes a key and a value, or an object of them");
    for (const key of Object.keys(updates)) {
      if (!(key in this.#state)) throw new TypeError(`${this.constructor.name} has no property '${key}'`);
    }
    const coerced = this._coerce({ ...this.#state, ...updates }, Object.keys(updates));
    const changes = this.#apply(coerced);
    this.#sendUpdate(changes.map((c) => c.name));
    this.#notify(changes);
    return this;
  }

  /**
   * Call cb({ name, old, new, owner }) after `name` changes, from the frontend or from code.
   * `names` may be one name, several, or "*" for every key. Returns a function that removes it.
   */
  observe(names, cb) {
    if (typeof cb !== "function") throw new TypeError("observe() needs a callback function");
    const list = Array.isArray(names) ? names : [names];
    for (const name of list) {
      if (name !== "*" && !(name in this.#state)) throw new TypeError(`${this.constructor.name} has no property '${name}'`);
      if (!this.#observers.has(name)) this.#observers.set(name, []);
      this.#observers.get(name).push(cb);
    }
    return () => {
      for (const name of list) {
        const cbs = this.#observers.get(name) ?? [];
        const i = cbs.indexOf(cb);
        if (i >= 0) cbs.splice(i, 1);
      }
    };
  }

  /** Backbone-style names as in the frontend: "change:value", "change" (any key), "msg:custom". */
  on(event, cb) {
    if (event === "msg:custom") return this.onCustom(cb);
    if (event === "change") return this.observe("*", cb);
    if (typeof event === "string" && event.startsWith("change:")) return this.observe(event.slice(7), cb);
    throw new TypeError(`unknown widget event '${event}' (use "change:NAME", "change" or "msg:custom")`);
  }

  /** Call cb(content, buffers) for each custom message from the frontend. */
  onCustom(cb) {
    if (typeof cb !== "function") throw new TypeError("onCustom() needs a callback function");
    this.#custom.push(cb);
    return () => {
      const i = this.#custom.indexOf(cb);
      if (i >= 0) this.#custom.splice(i, 1);
    };
  }

  /** A custom message to the frontend's model (what anywidget's model.on("msg:custom") gets). */
  send(content, buffers = []) {
    this.#comm.send({ method: "custom", content }, { buffers });
  }

  /** Close the comm: the frontend's views go; the widget cannot be shown again. */
  close() {
    if (this.closed) return;
    live.delete(this.modelId);
    this.#comm.close();
    for (const w of this.#owned) w.close();
  }

  /** What `ctx.display(widget)` shows: a view of the model, with a text fallback. */
  mimebundle() {
    return {
      "text/plain": this.toString(),
      [WIDGET_VIEW_MIMETYPE]: { version_major: 2, version_minor: 0, model_id: this.modelId },
    };
  }

  /** As ipywidgets' repr: the value, then the keys that differ from the class's defaults. */
  toString() {
    const keys = Object.keys(this.#state).filter((k) => !k.startsWith("_") && !(this.#state[k] instanceof Widget));
    const shown = keys
      .filter((k) => k === "value" || !(k in this.#defaults) || !same(this.#state[k], this.#defaults[k]))
      .sort((a, b) => (b === "value") - (a === "value"))
      .map((k) => `${k}=${k === "outputs" ? `[${this.#state[k].length} outputs]` : JSON.stringify(this.#state[k])}`);
    return `${this.constructor.name}(${shown.join(", ")})`;
  }

  /** Subclasses make a state valid here (clamp a value, say); `changed` are the keys being set. */
  _coerce(state, _changed) {
    return state;
  }

  /** What a model's entry in update_states (a reloaded page) holds. */
  _fullState() {
    return {
      model_name: this.#state._model_name,
      model_module: this.#state._model_module,
      model_module_version: this.#state._model_module_version,
      state: serialize(this.#state),
    };
  }

  #apply(state) {
    const changes = [];
    for (const [name, value] of Object.entries(state)) {
      const old = this.#state[name];
      if (same(old, value)) continue;
      this.#state[name] = value;
      changes.push({ name, old, new: value, owner: this });
    }
    return changes;
  }

  #sendUpdate(names, method = "update") {
    if (names.length === 0 || this.closed) return;
    const part = Object.fromEntries(names.map((n) => [n, this.#state[n]]));
    this.#sendState(part, method);
  }

  #sendState(state, method) {
    const { state: wire, buffer_paths, buffers } = removeBuffers(serialize(state));
    this.#comm.send({ method, state: wire, buffer_paths }, { buffers });
  }

  /** Run every observer of each change; the first error is thrown after all have run. */
  #notify(changes) {
    let failed = false;
    let first;
    for (const change of changes) {
      for (const cb of [...(this.#observers.get(change.name) ?? []), ...(this.#observers.get("*") ?? [])]) {
        try {
          cb(change);
        } catch (err) {
          if (!failed) [failed, first] = [true, err];
        }
      }
    }
    if (failed) throw first;
  }

  /** A message from the frontend's model (widget protocol 2.1). */
  #handle(msg) {
    const data = msg.data;
    if (data.method === "update") {
      const state = putBuffers(isPlainObject(data.state) ? { ...data.state } : {}, data.buffer_paths ?? [], msg.buffers);
      const known = Object.fromEntries(Object.entries(state).filter(([k]) => k in this.#state));
      // As ipywidgets 8: echo first, with the frontend message as parent, so that every
      // frontend (and the sender, which waits for it) knows the kernel took these values.
      if (Object.keys(known).length) this.#sendState(known, "echo_update");
      for (const [k, v] of Object.entries(known)) {
        const current = this.#state[k];
        // A widget reference comes as "IPY_MODEL_<id>"; keep the object if we know it.
        if (current instanceof Widget && typeof v === "string" && v.startsWith("IPY_MODEL_")) {
          known[k] = live.get(v.slice(10)) ?? v;
        }
      }
      const coerced = this._coerce({ ...this.#state, ...known }, Object.keys(known));
      const changes = this.#apply(coerced);
      // A value the kernel changed on the way in (clamped) goes back as a plain update.
      this.#sendUpdate(Object.keys(known).filter((k) => !same(coerced[k], known[k])));
      this.#notify(changes);
    } else if (data.method === "request_state") {
      this.#sendState(this.#state, "update");
    } else if (data.method === "custom") {
      let failed = false;
      let first;
      for (const cb of [...this.#custom]) {
        try {
          cb(data.content, msg.buffers);
        } catch (err) {
          if (!failed) [failed, first] = [true, err];
        }
      }
      if (failed) throw first;
    } else {
      throw new Error(`unknown widget message method ${JSON.stringify(data.method)}`);
    }
  }
}

/** Keyword arguments checked against a model's keys: a typo is an error, not a silent no-op. */
function withDefaults(name, defaults, kwargs) {
  if (kwargs === undefined || kwargs === null) return { ...defaults };
  if (!isPlainObject(kwargs)) throw new TypeError(`${name} takes an object of properties`);
  for (const key of Object.keys(kwargs)) {
    if (!(key in defaults)) throw new TypeError(`${name} has no property '${key}'`);
  }
  return { ...defaults, ...kwargs };
}

// -- layout and styles (@jupyter-widgets/base, controls) ------------------------------------------

const LAYOUT_KEYS = [
  "align_content", "align_items", "align_self", "border_bottom", "border_left", "border_right",
  "border_top", "bottom", "display", "flex", "flex_flow", "grid_area", "grid_auto_columns",
  "grid_auto_flow", "grid_auto_rows", "grid_column", "grid_gap", "grid_row", "grid_template_areas",
  "grid_template_columns", "grid_template_rows", "height", "justify_content", "justify_items", "left",
  "margin", "max_height", "max_width", "min_height", "min_width", "object_fit", "object_position",
  "order", "overflow", "padding", "right", "top", "visibility", "width",
];

/** CSS layout of a widget's view: `new Layout({ width: "300px" })`; every key defaults to null. */
export class Layout extends Widget {
  constructor(kwargs) {
    const defaults = {
      ...modelKeys(BASE, "LayoutModel", "2.0.0", BASE, "LayoutView", "2.0.0"),
      ...Object.fromEntries(LAYOUT_KEYS.map((k) => [k, null])),
    };
    super(withDefaults("Layout", defaults, kwargs));
  }
}

function styleKeys(modelName) {
  return modelKeys(CONTROLS, modelName, "2.0.0", BASE, "StyleView", "2.0.0");
}

export class DescriptionStyle extends Widget {
  constructor(kwargs) {
    super(withDefaults("DescriptionStyle", { ...styleKeys("DescriptionStyleModel"), description_width: "" }, kwargs));
  }
}

export class SliderStyle extends Widget {
  constructor(kwargs) {
    super(withDefaults("SliderStyle", { ...styleKeys("SliderStyleModel"), description_width: "", handle_color: null }, kwargs));
  }
}

export class ButtonStyle extends Widget {
  constructor(kwargs) {
    const defaults = {
      ...styleKeys("ButtonStyleModel"), button_color: null, font_family: null, font_size: null,
      font_style: null, font_variant: null, font_weight: null, text_color: null, text_decoration: null,
    };
    super(withDefaults("ButtonStyle", defaults, kwargs));
  }
}

export class TextStyle extends Widget {
  constructor(kwargs) {
    const defaults = { ...styleKeys("TextStyleModel"), background: null, description_width: "", font_size: null, text_color: null };
    super(withDefaults("TextStyle", defaults, kwargs));
  }
}

/**
 * The layout (and style) a DOM widget shows with: the one given (a Layout, or the keys of a
 * new one), or a new one of its own, closed with it.
 */
function part(Kind, given, owned) {
  if (given instanceof Kind) return given;
  const made = new Kind(given ?? {});
  owned.push(made);
  return made;
}

/** A widget with a view in the page: layout, tooltip, CSS classes (ipywidgets' DOMWidget). */
export class DOMWidget extends Widget {
  /** `Style`: the style model class, or null for a widget without one. */
  constructor(name, defaults, kwargs, Style = null) {
    const { layout, style, ...rest } = kwargs ?? {};
    if (style !== undefined && !Style) throw new TypeError(`${name} has no property 'style'`);
    const all = { _dom_classes: [], tabbable: null, tooltip: null, ...defaults };
    const state = withDefaults(name, all, rest);
    const owned = [];
    state.layout = part(Layout, layout, owned);
    if (Style) state.style = part(Style, style, owned);
    // Keys in order, as ipywidgets sends them (easier to compare by eye).
    super(Object.fromEntries(Object.entries(state).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))), { owned, defaults: all });
  }
}

const CONTROL_MODEL = (name, view) => modelKeys(CONTROLS, name, "2.0.0", CONTROLS, view, "2.0.0");

// -- controls (@jupyter-widgets/controls 2.0.0) ---------------------------------------------------

/** A slider for an integer between min and max. */
export class IntSlider extends DOMWidget {
  constructor(kwargs) {
    super("IntSlider", {
      ...CONTROL_MODEL("IntSliderModel", "IntSliderView"),
      behavior: "drag-tap", continuous_update: true, description: "", description_allow_html: false,
      disabled: false, max: 100, min: 0, orientation: "horizontal", readout: true, readout_format: "d",
      step: 1, value: 0,
    }, IntSlider.#valid(kwargs), SliderStyle);
  }

  static #valid(kwargs) {
    const k = { ...(kwargs ?? {}) };
    for (const key of ["value", "min", "max", "step"]) {
      if (key in k && !Number.isInteger(k[key])) throw new TypeError(`IntSlider ${key} must be an integer, not ${JSON.stringify(k[key])}`);
    }
    const min = k.min ?? 0;
    const max = k.max ?? 100;
    if (min > max) throw new RangeError(`IntSlider min (${min}) is above max (${max})`);
    if ("value" in k) k.value = Math.min(max, Math.max(min, k.value));
    else k.value = Math.min(max, Math.max(min, 0));
    return k;
  }

  /** As ipywidgets: the value stays within [min, max]; whole numbers only. */
  _coerce(state, changed) {
    for (const key of changed) {
      if (["value", "min", "max", "step"].includes(key)) {
        const v = state[key];
        if (typeof v !== "number" || !Number.isFinite(v)) throw new TypeError(`IntSlider ${key} must be an integer, not ${JSON.stringify(v)}`);
        state[key] = Math.round(v);
      }
    }
    if (state.min > state.max) throw new RangeError(`IntSlider min (${state.min}) is above max (${state.max})`);
    state.value = Math.min(state.max, Math.max(state.min, state.value));
    return state;
  }
}

/** A button: `onClick(cb)` runs cb(button) on each click in the page. */
export class Button extends DOMWidget {
  #clicks = [];

  constructor(kwargs) {
    super("Button", {
      ...CONTROL_MODEL("ButtonModel", "ButtonView"),
      button_style: "", description: "", disabled: false, icon: "",
    }, kwargs, ButtonStyle);
    this.onCustom((content) => {
      if (content?.event === "click") this.click();
    });
  }

  onClick(cb) {
    if (typeof cb !== "function") throw new TypeError("onClick() needs a callback function");
    this.#clicks.push(cb);
    return () => {
      const i = this.#clicks.indexOf(cb);
      if (i >= 0) this.#clicks.splice(i, 1);
    };
  }

  /** Run the click callbacks, as a click in the page does. */
  click() {
    let failed = false;
    let first;
    for (const cb of [...this.#clicks]) {
      try {
        cb(this);
      } catch (err) {
        if (!failed) [failed, first] = [true, err];
      }
    }
    if (failed) throw first;
  }
}

/** A one-line text field: `value` follows what is typed; `onSubmit(cb)` runs on Enter. */
export class Text extends DOMWidget {
  constructor(kwargs) {
    super("Text", {
      ...CONTROL_MODEL("TextModel", "TextView"),
      continuous_update: true, description: "", description_allow_html: false, disabled: false,
      placeholder: "\u200b", value: "",
    }, kwargs, TextStyle);
  }

  onSubmit(cb) {
    if (typeof cb !== "function") throw new TypeError("onSubmit() needs a callback function");
    return this.onCustom((content) => {
      if (content?.event === "submit") cb(this);
    });
  }
}

/**
 * An output area the kernel writes to: `appendStdout(text)`, `appendStderr(text)`,
 * `appendDisplayData(bundle or widget)`, `clearOutput()`. (Capturing a cell's output into it,
 * ipywidgets' `with out:`, needs the Jupyter message id, which a bridge backend never sees.)
 */
export class Output extends DOMWidget {
  constructor(kwargs) {
    super("Output", {
      ...modelKeys(OUTPUT, "OutputModel", "1.0.0", OUTPUT, "OutputView", "1.0.0"),
      msg_id: "", outputs: [],
    }, kwargs);
  }

  #append(output) {
    this.set("outputs", [...this.get("outputs"), output]);
  }

  appendStdout(text) {
    this.#append({ output_type: "stream", name: "stdout", text: String(text) });
  }

  appendStderr(text) {
    this.#append({ output_type: "stream", name: "stderr", text: String(text) });
  }

  appendDisplayData(data, metadata = {}) {
    const bundle = data !== null && typeof data === "object" && typeof data.mimebundle === "function" ? data.mimebundle() : data;
    this.#append({ output_type: "display_data", data: bundle, metadata });
  }

  clearOutput() {
    this.set("outputs", []);
  }
}

// -- anywidget ---------------------------------------------------------------------------------

/**
 * An anywidget: your own view as an ES module (`esm`, the text of a module whose default
 * export has `render({ model, el })`), optional `css`, and the synced keys in `state`. The page
 * needs the anywidget JupyterLab extension (`pip install anywidget`); `moduleVersion` must
 * match it (default: what anywidget 0.11's Python side sends).
 */
export class AnyWidget extends DOMWidget {
  constructor({ esm, css, state = {}, layout, tooltip, anywidgetId = "kernelkit.AnyWidget", moduleVersion = ANYWIDGET_VERSION } = {}) {
    if (typeof esm !== "string" || esm === "") throw new TypeError("AnyWidget needs esm: the text (or URL) of an ES module");
    if (css !== undefined && typeof css !== "string") throw new TypeError("AnyWidget css must be a string");
    if (!isPlainObject(state)) throw new TypeError("AnyWidget state must be an object");
    for (const key of Object.keys(state)) {
      if (key.startsWith("_") || key === "layout" || key === "tabbable" || key === "tooltip") {
        throw new TypeError(`AnyWidget state cannot have the key '${key}' (the widget's own)`);
      }
    }
    const defaults = {
      ...modelKeys("anywidget", "AnyModel", moduleVersion, "anywidget", "AnyView", moduleVersion),
      _anywidget_id: anywidgetId, _esm: esm, ...(css === undefined ? {} : { _css: css }), ...state,
    };
    super("AnyWidget", defaults, { layout, ...(tooltip === undefined ? {} : { tooltip }) });
  }
}

// -- the control comm: a reloaded page asks for every widget's state -------------------------

comms.registerTarget(CONTROL_TARGET, (comm) => {
  comm.onMsg((msg) => {
    if (msg.data.method !== "request_states") {
      throw new Error(`unknown widget control method ${JSON.stringify(msg.data.method)}`);
    }
    const states = {};
    for (const [id, w] of live) states[id] = w._fullState();
    const { state, buffer_paths, buffers } = removeBuffers(states);
    comm.send({ method: "update_states", states: state, buffer_paths }, { buffers });
  });
});
