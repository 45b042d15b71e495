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

/**
 * What a running execute can do: every call becomes output of that cell. Output names its
 * request, so a call after the execute has returned (a timer) is logged by the host, never
 * shown under another cell.
 */
export interface Context {
  /** Aborted when the user interrupts the execution. */
  signal: AbortSignal;
  stream(name: "stdout" | "stderr", text: string): void;
  /** stream("stdout", text + "\n") */
  print(text: unknown): void;
  display(data: MimeBundle, metadata?: Record<string, unknown>, transient?: Record<string, unknown>): void;
  updateDisplay(data: MimeBundle, displayId: string, metadata?: Record<string, unknown>): void;
  clearOutput(wait?: boolean): void;
  /** The cell's result (execute_result); the host adds the execution count. */
  result(data: MimeBundle, metadata?: Record<string, unknown>): void;
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
