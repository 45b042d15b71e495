// Jupyter widgets from a Deno kernel, both ways, through the kernelkit bridge:
//   kernelkit install --name deno-widgets --display-name "Widgets (Deno)" -- deno run examples/deno/widgets.ts
// Each cell is one command (see BANNER). The widgets live in this backend: a value the page
// sets is what the next cell prints, and a reloaded page gets them back with their state.
import { type Context, serve } from "../../src/kernelkit/sdk/js/kernelkit.js";
import { AnyWidget, Button, IntSlider, Output, Text } from "../../src/kernelkit/sdk/js/widgets.js";

const BANNER = `Widgets on Deno. Commands, one a cell:
  slider    show the slider          value     print the slider's value
  set N     move the slider to N     button    show the button
  clicks    print the button's clicks
  counter   show an anywidget counter (a button whose count syncs back)
  count     print the counter's count
  text      show a text field        typed     print its text
  output    show an output area that logs each click
  help      this list`;

// An anywidget: the view is this ES module, run in the page by anywidget's extension.
const COUNTER_ESM = `
export default {
  render({ model, el }) {
    const button = document.createElement("button");
    button.className = "kk-counter";
    const show = () => { button.textContent = "count is " + model.get("count"); };
    button.addEventListener("click", () => {
      model.set("count", model.get("count") + 1);
      model.save_changes();
    });
    model.on("change:count", show);
    show();
    el.appendChild(button);
  },
};`;
const COUNTER_CSS = ".kk-counter { font-weight: bold; padding: 4px 12px; }";

// Made on first use, then shown again (another view of the same model) by each command.
let slider: IntSlider | undefined;
let button: Button | undefined;
let counter: (AnyWidget<{ count: number }> & { count: number }) | undefined;
let text: Text | undefined;
let output: Output | undefined;
let clicks = 0;

const theSlider = () => (slider ??= new IntSlider({ value: 5, min: 0, max: 10, description: "n" }));

function theButton(): Button {
  if (!button) {
    button = new Button({ description: "Click me", tooltip: "counted by the kernel" });
    button.onClick(() => {
      clicks += 1;
      output?.appendStdout(`click ${clicks}\n`);
    });
  }
  return button;
}

function theCounter() {
  counter ??= new AnyWidget({
    esm: COUNTER_ESM, css: COUNTER_CSS, state: { count: 0 }, anywidgetId: "kernelkit.examples.Counter",
  });
  return counter;
}

const commands: Record<string, (ctx: Context, arg: string) => void> = {
  slider: (ctx) => ctx.display(theSlider()),
  value: (ctx) => ctx.print(slider ? slider.value : "no slider yet: run `slider`"),
  set: (_ctx, arg) => {
    const n = Number(arg);
    if (!Number.isInteger(n)) throw new TypeError(`set needs a whole number, not ${JSON.stringify(arg)}`);
    theSlider().value = n;
  },
  button: (ctx) => ctx.display(theButton()),
  clicks: (ctx) => ctx.print(clicks),
  counter: (ctx) => ctx.display(theCounter()),
  count: (ctx) => ctx.print(counter ? counter.count : "no counter yet: run `counter`"),
  text: (ctx) => ctx.display(text ??= new Text({ description: "say", placeholder: "type here" })),
  typed: (ctx) => ctx.print(text ? JSON.stringify(text.value) : "no text field yet: run `text`"),
  output: (ctx) => {
    output ??= new Output({ layout: { border_top: "1px solid #ccc", min_height: "2em" } });
    theButton();
    ctx.display(output);
  },
  help: (ctx) => ctx.print(BANNER),
};

serve({
  info: {
    implementation: "deno-widgets",
    implementation_version: "1.0",
    language_info: { name: "widget-commands", mimetype: "text/plain", file_extension: ".txt" },
    banner: BANNER,
    // JupyterLab sends widget traffic over subshells: with this, a slider moves while a cell runs.
    subshells: true,
  },
  execute({ code, silent }, ctx) {
    const [name = "", ...rest] = code.trim().split(/\s+/);
    if (name === "") return;
    const command = commands[name];
    if (!command) throw new SyntaxError(`unknown command ${JSON.stringify(name)}; try help`);
    if (!silent || name === "set") command(ctx, rest.join(" ")); // silent: no output to make
  },
});
