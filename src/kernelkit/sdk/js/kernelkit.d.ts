/** Types for kernelkit.js, the kernelkit bridge backend SDK (see docs/bridge-protocol.md). */

export declare const BRIDGE_PROTOCOL_VERSION: string;

/** A MIME bundle: MIME type → value (e.g. {"text/plain": "42"}). */
export type MimeBundle = Record<string, unknown>;

export interface LanguageInfo {
  name: string;
  version?: string;
  mimetype?: string;
  file_extension?: string;
  [key: string]: unknown;
}

/** What `initialize` answers: becomes the kernel's kernel_info_reply. */
export interface KernelInfo {
  implementation: string;
  implementation_version: string;
  language_info: LanguageInfo;
  language_version?: string;
  banner?: string;
  help_links?: { text: string; url: string }[];
  /** How the host should interrupt this backend: SIGINT ("signal", default) or an `interrupt` notification. */
  interrupt_mode?: "signal" | "message";
  /**
   * Bridge protocol 1.1: this backend can run requests concurrently, one per subshell
   * (JupyterLab's subshell consoles, comm traffic). Then `execute` may be called again
   * while an earlier call's promise is pending; the kernel advertises "kernel subshells".
   */
  subshells?: boolean;
  /**
   * Bridge protocol 1.2: comm targets this backend accepts. The SDK adds every target
   * registered by then (`comms.registerTarget`, `serve({ commTargets })`) by itself.
   */
  comm_targets?: string[];
}

export interface ExecuteRequest {
  code: string;
  silent: boolean;
  store_history: boolean;
  user_expressions: Record<string, string>;
  allow_stdin: boolean;
  /** The count the host assigned to this execution (it owns the counter). */
  execution_count: number;
  cell_id: string | null;
  /** The subshell this request runs on (null: the main shell). */
  subshell_id?: string | null;
}

export interface ErrorReply {
  status: "error";
  ename: string;
  evalue: string;
  traceback: string[];
}

export interface ExecuteReply {
  status?: "ok" | "error";
  user_expressions?: Record<string, unknown>;
  payload?: unknown[];
  ename?: string;
  evalue?: string;
  traceback?: string[];
}

/** Binary data for a comm: sent as base64, received as Uint8Array. */
export type BufferLike = Uint8Array | ArrayBuffer | ArrayBufferView;

/** A message from the frontend on a comm (comm_open, comm_msg or comm_close). */
export interface CommMsg {
  commId: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  buffers: Uint8Array[];
}

export interface CommSendOptions {
  metadata?: Record<string, unknown>;
  buffers?: BufferLike[];
}

export interface CommOpenOptions extends CommSendOptions {
  /** Default: a random UUID as 32 hex digits. */
  commId?: string;
  targetModule?: string;
}

/**
 * Called when the frontend opens a comm to a registered target. `ctx` is the output of that
 * comm_open message. What it throws refuses the comm: the host closes it and logs the error.
 */
export type CommTargetHandler = (comm: Comm, msg: CommMsg, ctx: Context) => void | Promise<void>;

/**
 * A callback for messages (or the close) from the frontend. `ctx` makes output that
 * belongs to that message; what it throws is logged by the host and the backend goes on.
 */
export type CommCallback = (msg: CommMsg, ctx: Context) => void | Promise<void>;

/** One end of a comm; get one from `comms.open` or in a target handler. */
export declare class Comm {
  readonly commId: string;
  readonly targetName: string;
  /** True once either side has closed it; sending then throws. */
  readonly closed: boolean;
  private constructor();
  send(data?: Record<string, unknown>, options?: CommSendOptions): void;
  /** Close from the backend's side (the frontend gets comm_close); a second close does nothing. */
  close(data?: Record<string, unknown>, options?: CommSendOptions): void;
  /** Add a callback for the frontend's messages; returns a function that removes it. */
  onMsg(cb: CommCallback): () => void;
  /** Add a callback for the frontend closing the comm; returns a function that removes it. */
  onClose(cb: CommCallback): () => void;
}

/** The backend's comms (one per process). Also `ctx.comms`. */
export interface Comms {
  /** May be called before `serve()` (the target goes into `initialize`) or at any time later. */
  registerTarget(name: string, handler: CommTargetHandler): void;
  unregisterTarget(name: string): void;
  /** Open a comm to the frontend's target `targetName`. */
  open(targetName: string, data?: Record<string, unknown>, options?: CommOpenOptions): Comm;
  get(commId: string): Comm | undefined;
  /** The comms open now. */
  list(): Comm[];
}

export declare const comms: Comms;

/** Anything with a MIME bundle of its own, such as a widget: `ctx.display(widget)`. */
export interface HasMimeBundle {
  mimebundle(): MimeBundle;
}

/**
 * What a running execute (or comm handler) can do: every call becomes output of that cell
 * (or comm message). Output names its request, so a call after the execute has returned (a
 * timer) is logged by the host, never shown under another cell.
 */
export interface Context {
  /** Aborted when the user interrupts the execution. */
  signal: AbortSignal;
  /** The module's `comms`. */
  comms: Comms;
  /**
   * Run fn now as this request's code: comm messages it sends name this request, as those
   * sent while the handler itself runs do. For code that acts for the request later, from
   * an event such as a worker's message, where the SDK cannot tell whose it is (with
   * subshells several requests run at once; a widget's echo must go to the message it answers).
   */
  within<T>(fn: () => T): T;
  stream(name: "stdout" | "stderr", text: string): void;
  /** stream("stdout", text + "\n") */
  print(text: unknown): void;
  /** A MIME bundle, or an object with a `mimebundle()` method (a widget), shown as its bundle. */
  display(data: MimeBundle | HasMimeBundle, metadata?: Record<string, unknown>, transient?: Record<string, unknown>): void;
  updateDisplay(data: MimeBundle | HasMimeBundle, displayId: string, metadata?: Record<string, unknown>): void;
  clearOutput(wait?: boolean): void;
  /** The cell's result (execute_result); the host adds the execution count. */
  result(data: MimeBundle | HasMimeBundle, metadata?: Record<string, unknown>): void;
  /**
   * Ask the user for a line through the client. Rejects with an error whose `name` is
   * "StdinNotImplementedError" if the client does not allow input, or "KeyboardInterrupt"
   * if the user interrupts while asked.
   */
  input(prompt?: string): Promise<string>;
  getpass(prompt?: string): Promise<string>;
}

type MaybePromise<T> = T | Promise<T>;

export interface Backend {
  info: KernelInfo;
  /** Comm targets to register before the host is told about the backend (protocol 1.2). */
  commTargets?: Record<string, CommTargetHandler>;
  /**
   * On an interrupt the SDK aborts every running execute's `ctx.signal` and answers it with
   * KeyboardInterrupt at once; with `answersInterrupts: true` it only aborts the signals and
   * the execute's own outcome is the answer (it must then end soon: the host kills a backend
   * that has not answered 2 s after an interrupt).
   */
  answersInterrupts?: boolean;
  /**
   * Deno only: read stdin with a blocking `Deno.stdin.readSync` whenever no request waits for
   * I/O, which answers each request sooner (no event-loop wake-up per line). Nothing runs
   * between requests then (timers, intervals and signal listeners wait for the next request),
   * so it needs `info.interrupt_mode: "message"`; `serve()` throws otherwise, and on Node.js.
   */
  syncStdin?: boolean;
  execute(request: ExecuteRequest, ctx: Context): MaybePromise<ExecuteReply | void>;
  complete?(request: { code: string; cursor_pos: number }): MaybePromise<{
    matches: string[];
    cursor_start: number;
    cursor_end: number;
    metadata?: Record<string, unknown>;
  }>;
  inspect?(request: { code: string; cursor_pos: number; detail_level: number }): MaybePromise<{
    found: boolean;
    data: MimeBundle;
    metadata: Record<string, unknown>;
  }>;
  is_complete?(request: { code: string }): MaybePromise<{ status: "complete" | "incomplete" | "invalid" | "unknown"; indent?: string }>;
  history?(request: Record<string, unknown>): MaybePromise<{ history: unknown[] }>;
  shutdown?(request: { restart: boolean }): MaybePromise<void>;
}

/** The error triple of a Jupyter error reply, from anything thrown. */
export declare function errorContent(err: unknown): ErrorReply;

/** Serve `backend` over stdin/stdout until the host shuts it down or goes away. */
export declare function serve(backend: Backend): void;
