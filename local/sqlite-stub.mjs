// The emulator imports node:sqlite (Node >= 22.5) for its optional persistence, which local runs do not use.
// On older Node this hook maps that import to a stub that fails only if persistence is asked for.
import { register } from "node:module";

const hook = `export async function resolve(s, c, next) {
  if (s === "node:sqlite") return { shortCircuit: true, url: "data:text/javascript,export class DatabaseSync { constructor() { throw new Error('node:sqlite needs Node >= 22.5'); } }" };
  return next(s, c);
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
