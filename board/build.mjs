// Builds the board into dist/: one script, one stylesheet, the page and its icon. esbuild is a
// single pinned binary with no plugins here; its output depends only on the sources and the
// lockfile, so CI rebuilds and compares byte for byte (no timestamps, no source maps, no hashes
// of absolute paths: `absWorkingDir` is this folder and paths are relative).
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);

const common = {
  absWorkingDir: here,
  bundle: true,
  minify: true,
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
};

await build({
  ...common,
  entryPoints: ["src/main.ts"],
  outfile: "dist/board.js",
  format: "iife",
  target: ["chrome110", "firefox115", "safari16"],
});
await build({ ...common, entryPoints: ["src/style.css"], outfile: "dist/board.css" });
for (const file of ["index.html", "favicon.svg"]) copyFileSync(join(here, "src", file), join(dist, file));
