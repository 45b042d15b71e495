/** Types for widgets.js: Jupyter widgets (protocol 2.1) over kernelkit comms. */

import type { BufferLike, MimeBundle } from "./kernelkit.d.ts";

export declare const WIDGET_PROTOCOL_VERSION: "2.1.0";
export declare const WIDGET_VIEW_MIMETYPE: "application/vnd.jupyter.widget-view+json";
/** The anywidget module version AnyWidget asks for by default ("~0.11.*"). */
export declare const ANYWIDGET_VERSION: string;

/** What an observer gets after a key changed (from the frontend or from code). */
export interface Change<T = unknown> {
  name: string;
  old: T;
  new: T;
  owner: Widget;
}

/** A widget model's state: its keys and JSON values, binary values, or other widgets. */
export type State = Record<string, unknown>;

/** The widget-view MIME bundle `ctx.display(widget)` shows, with a text/plain fallback. */
export interface WidgetBundle extends MimeBundle {
  "text/plain": string;
  "application/vnd.jupyter.widget-view+json": { version_major: 2; version_minor: 0; model_id: string };
}

/**
 * A widget model mirrored in the frontend. Each state key is also a property, typed on each
 * class below (`slider.value = 7` sends an update); `get`/`set` reach every key.
 */
export declare class Widget {
  /** `state` is the whole model state including `_model_name`, `_model_module`, `_model_module_version`. */
  constructor(state: State, options?: { owned?: Widget[] });
  /** The model id, which is also its comm id. */
  readonly modelId: string;
  readonly closed: boolean;
  get(name: string): unknown;
  getState(): State;
  /** Set one key or several; the frontend gets one update, then observers run. Unknown keys throw. */
  set(name: string, value: unknown): this;
  set(state: State): this;
  /** Observe one key, several, or "*"; returns a function that removes the observer. */
  observe(names: string | string[], cb: (change: Change) => void): () => void;
  /** "change:NAME", "change" (any key) or "msg:custom". */
  on(event: string, cb: (arg: any, buffers?: Uint8Array[]) => void): () => void;
  /** Custom messages from the frontend's model. */
  onCustom(cb: (content: unknown, buffers: Uint8Array[]) => void): () => void;
  /** A custom message to the frontend's model. */
  send(content: unknown, buffers?: BufferLike[]): void;
  close(): void;
  mimebundle(): WidgetBundle;
  toString(): string;
  /** Subclasses: make a state valid (clamp, round); `changed` are the keys being set. */
  protected _coerce(state: State, changed: string[]): State;
}

/** A live widget by model id. */
export declare function getWidget(modelId: string): Widget | undefined;
/** Every live widget, in the order made (layouts and styles included). */
export declare function widgets(): Widget[];
/** Binary values out of a state, with their paths (ipywidgets' _remove_buffers). */
export declare function removeBuffers(state: State): { state: State; buffer_paths: (string | number)[][]; buffers: BufferLike[] };
/** Buffers put back into a state at their paths. */
export declare function putBuffers(state: State, paths: (string | number)[][], buffers: unknown[]): State;

type Css = string | null;

export interface LayoutProps {
  align_content?: Css; align_items?: Css; align_self?: Css; border_bottom?: Css; border_left?: Css;
  border_right?: Css; border_top?: Css; bottom?: Css; display?: Css; flex?: Css; flex_flow?: Css;
  grid_area?: Css; grid_auto_columns?: Css; grid_auto_flow?: Css; grid_auto_rows?: Css;
  grid_column?: Css; grid_gap?: Css; grid_row?: Css; grid_template_areas?: Css;
  grid_template_columns?: Css; grid_template_rows?: Css; height?: Css; justify_content?: Css;
  justify_items?: Css; left?: Css; margin?: Css; max_height?: Css; max_width?: Css; min_height?: Css;
  min_width?: Css; object_fit?: Css; object_position?: Css; order?: Css; overflow?: Css;
  padding?: Css; right?: Css; top?: Css; visibility?: Css; width?: Css;
}

export declare class Layout extends Widget {
  constructor(props?: LayoutProps);
  width: Css;
  height: Css;
  [key: string]: unknown;
}

export declare class DescriptionStyle extends Widget {
  constructor(props?: { description_width?: string });
  description_width: string;
}
export declare class SliderStyle extends Widget {
  constructor(props?: { description_width?: string; handle_color?: Css });
  description_width: string;
  handle_color: Css;
}
export interface ButtonStyleProps {
  button_color?: Css; font_family?: Css; font_size?: Css; font_style?: Css; font_variant?: Css;
  font_weight?: Css; text_color?: Css; text_decoration?: Css;
}
export declare class ButtonStyle extends Widget {
  constructor(props?: ButtonStyleProps);
  button_color: Css;
  [key: string]: unknown;
}
export declare class TextStyle extends Widget {
  constructor(props?: { background?: Css; description_width?: string; font_size?: Css; text_color?: Css });
  background: Css;
  description_width: string;
  font_size: Css;
  text_color: Css;
}

export interface DOMWidgetProps {
  /** A Layout, or the keys of a new one (made for this widget and closed with it). */
  layout?: Layout | LayoutProps;
  tooltip?: string | null;
  tabbable?: boolean | null;
  _dom_classes?: string[];
}

export declare class DOMWidget extends Widget {
  constructor(name: string, defaults: State, props?: State, Style?: (new (props?: object) => Widget) | null);
  layout: Layout;
  tooltip: string | null;
  tabbable: boolean | null;
}

interface DescriptionProps extends DOMWidgetProps {
  description?: string;
  description_allow_html?: boolean;
  disabled?: boolean;
}

export interface IntSliderProps extends DescriptionProps {
  value?: number; min?: number; max?: number; step?: number;
  behavior?: string; continuous_update?: boolean; orientation?: "horizontal" | "vertical";
  readout?: boolean; readout_format?: string;
  style?: SliderStyle | { description_width?: string; handle_color?: Css };
}

/** An integer slider; `value` is kept within [min, max]. */
export declare class IntSlider extends DOMWidget {
  constructor(props?: IntSliderProps);
  value: number; min: number; max: number; step: number;
  description: string; disabled: boolean; continuous_update: boolean;
  orientation: "horizontal" | "vertical"; readout: boolean; readout_format: string; behavior: string;
  style: SliderStyle;
}

export interface ButtonProps extends DOMWidgetProps {
  description?: string; disabled?: boolean; icon?: string;
  button_style?: "" | "primary" | "success" | "info" | "warning" | "danger";
  style?: ButtonStyle | ButtonStyleProps;
}

export declare class Button extends DOMWidget {
  constructor(props?: ButtonProps);
  description: string; disabled: boolean; icon: string; button_style: string;
  style: ButtonStyle;
  /** cb(button) on each click in the page; returns a function that removes it. */
  onClick(cb: (button: Button) => void): () => void;
  /** Run the click callbacks as a click does. */
  click(): void;
}

export interface TextProps extends DescriptionProps {
  value?: string; placeholder?: string; continuous_update?: boolean;
  style?: TextStyle | { background?: Css; description_width?: string; font_size?: Css; text_color?: Css };
}

export declare class Text extends DOMWidget {
  constructor(props?: TextProps);
  value: string; placeholder: string; description: string; disabled: boolean; continuous_update: boolean;
  style: TextStyle;
  /** cb(text) when the user presses Enter in it. */
  onSubmit(cb: (text: Text) => void): () => void;
}

/** One output of an Output widget, as in a notebook file. */
export type OutputItem =
  | { output_type: "stream"; name: "stdout" | "stderr"; text: string }
  | { output_type: "display_data"; data: MimeBundle; metadata: Record<string, unknown> };

export declare class Output extends DOMWidget {
  constructor(props?: DOMWidgetProps);
  outputs: OutputItem[];
  msg_id: string;
  appendStdout(text: string): void;
  appendStderr(text: string): void;
  appendDisplayData(data: MimeBundle | { mimebundle(): MimeBundle }, metadata?: Record<string, unknown>): void;
  clearOutput(): void;
}

export interface AnyWidgetOptions<S extends State> {
  /** The ES module (its text, or a URL) whose default export has render({ model, el }). */
  esm: string;
  css?: string;
  /** The synced keys and their first values; each becomes a property. */
  state?: S;
  layout?: Layout | LayoutProps;
  tooltip?: string | null;
  /** `_anywidget_id` (anywidget uses it to replace CSS); default "kernelkit.AnyWidget". */
  anywidgetId?: string;
  /** `_model_module_version`/`_view_module_version`; default ANYWIDGET_VERSION. */
  moduleVersion?: string;
}

export interface AnyWidget<S extends State = State> extends DOMWidget {
  get<K extends keyof S & string>(name: K): S[K];
  get(name: string): unknown;
}

export interface AnyWidgetConstructor {
  new <S extends State = State>(options: AnyWidgetOptions<S>): AnyWidget<S> & S;
  prototype: AnyWidget;
}

/** anywidget's AnyModel/AnyView: a view of your own from an ES module. */
export declare const AnyWidget: AnyWidgetConstructor;
