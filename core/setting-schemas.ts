/**
 * The value schemas that settings tables share, each with an error that says what is allowed. Strings from
 * flags, environment variables and files are coerced here.
 */
import { z } from "zod";

export const int = (min: number, max: number) =>
  z.coerce
    .number({ error: `expected an integer from ${min} to ${max}` })
    .int(`expected an integer from ${min} to ${max}`)
    .min(min, `expected an integer from ${min} to ${max}`)
    .max(max, `expected an integer from ${min} to ${max}`);

export const bool = z.preprocess(
  (v) =>
    typeof v === "string" ? ({ true: true, false: false, "1": true, "0": false }[v.toLowerCase()] ?? v) : v,
  z.boolean({ error: "expected true or false" }),
);

export const url = z.url({ error: "expected a URL such as http://127.0.0.1:4566" });

export const nonEmpty = (what: string) => z.string({ error: `expected ${what}` }).min(1, `expected ${what}`);
