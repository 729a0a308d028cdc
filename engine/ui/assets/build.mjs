// Bundles the diagram viewer (bpmn-js + bpmn-auto-layout and diagram.js) and its
// styles into engine/ui/static/vendor/ — run by `make ui-assets` after `npm ci`.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.join(here, "..", "static", "vendor");

await build({
  entryPoints: [
    { in: path.join(here, "diagram.js"), out: "diagram" },
    { in: path.join(here, "diagram.css"), out: "diagram" },
  ],
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  outdir,
  loader: { ".woff": "file", ".woff2": "file", ".ttf": "file", ".eot": "file", ".svg": "file" },
  legalComments: "linked",
  logLevel: "warning",
});
