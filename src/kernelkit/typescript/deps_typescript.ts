/**
 * The TypeScript compiler, for the cells sucrase cannot strip (transform.ts, needsTypeScript):
 * decorators, which V8 does not run yet and which TypeScript lowers as Deno's kernel does
 * (TC39 decorators), and namespaces with values, which sucrase drops without a word. Bundled
 * by `prepare()` (__init__.py) into a file of its own, typescript.js (about 10 MB), that the
 * supervisor imports only when a cell needs it. Pinned here and in typescript.lock.
 */
import ts from "npm:typescript@5.9.3";

export const version: string = ts.version;

/** A cell → JavaScript (ES2022, so decorators are lowered), its source map and syntax errors. */
export function transpile(code: string): {
  code: string;
  map: string;
  diagnostics: { message: string; start: number }[];
} {
  const out = ts.transpileModule(code, {
    fileName: "cell.ts",
    reportDiagnostics: true,
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      sourceMap: true,
      // A cell's import may be used only by a later cell: keep every one as written.
      verbatimModuleSyntax: true,
      useDefineForClassFields: true,
    },
  });
  return {
    code: out.outputText.replace(/\n?\/\/# sourceMappingURL=\S*\s*$/, "\n"),
    map: JSON.parse(out.sourceMapText ?? '{"mappings":""}').mappings,
    diagnostics: (out.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error).map((d) => ({
      message: ts.flattenDiagnosticMessageText(d.messageText, "\n"),
      start: d.start ?? 0,
    })),
  };
}
