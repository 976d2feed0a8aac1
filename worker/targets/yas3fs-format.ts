/**
 * The objects yas3fs writes and reads, so that a bucket we load mounts with every owner, mode and time intact.
 * Pure functions: keys, Content-Types, and the `attr` user metadata (stat-like JSON with the file type bits in
 * `st_mode`, which is the only place yas3fs takes the type from).
 */
import path from "node:path";
import type { EntryKind } from "../../core/messages.ts";
import { attrText } from "./times.ts";

export const DIRECTORY_TYPE = "application/x-directory";
export const SYMLINK_TYPE = "application/x-symlink";
/** S3's limit on key length, in bytes of UTF-8. */
export const MAX_KEY_BYTES = 1024;

export interface StatLike {
  readonly mode: bigint;
  readonly uid: bigint;
  readonly gid: bigint;
  readonly atimeNs: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
}

/**
 * The key of an entry under a prefix ("" or "a/b", no slashes at either end). Directories end with `/`; the
 * root is the prefix's own marker, or `.` when there is no prefix (where yas3fs keeps the root's metadata).
 */
export function keyOf(prefix: string, relPath: string, kind: EntryKind): string {
  if (relPath === ".") return prefix ? `${prefix}/` : ".";
  const key = prefix ? `${prefix}/${relPath}` : relPath;
  return kind === "dir" ? `${key}/` : key;
}

/**
 * The `attr` metadata: compact ASCII JSON. yas3fs (Python's `json.loads`) reads the times as doubles: each is
 * written as the shortest decimal of the double nearest the source's time that floors to its second (see
 * times.ts `attrSeconds`), so no reader sees another second; `st_size` is the object's size (yas3fs reads the
 * size from the object anyway).
 */
export function attrJson(st: StatLike, size: number): string {
  return (
    `{"st_mode":${st.mode},"st_uid":${st.uid},"st_gid":${st.gid},` +
    `"st_atime":${attrText(st.atimeNs)},"st_mtime":${attrText(st.mtimeNs)},"st_ctime":${attrText(st.ctimeNs)},` +
    `"st_size":${size}}`
  );
}

export interface ParsedAttr {
  readonly mode: bigint;
  readonly uid: bigint;
  readonly gid: bigint;
  /** st_mtime as yas3fs reads it: a double. */
  readonly mtime: number;
  /** st_mtime as written, for messages. */
  readonly mtimeText: string;
  readonly size: number | undefined;
}

const ATTR_KEYS = ["st_mode", "st_mtime", "st_size", "st_uid", "st_gid"] as const;
type AttrKey = (typeof ATTR_KEYS)[number];
/** One number of `attr` by its key, as Python's json writes it (compiled once: VALIDATE parses every object's). */
const ATTR_NUMBER = Object.fromEntries(
  ATTR_KEYS.map((k) => [k, new RegExp(`"${k}"\\s*:\\s*(-?\\d+(?:\\.\\d+)?(?:[eE][+-]?\\d+)?)`)]),
) as Record<AttrKey, RegExp>;

/** Reads `attr` as yas3fs writes it (floats, `", "` separators, any key order) or as we do. */
export function parseAttr(text: string | undefined): ParsedAttr | null {
  if (!text) return null;
  const num = (key: AttrKey) => ATTR_NUMBER[key].exec(text)?.[1];
  const mode = num("st_mode");
  const mtime = num("st_mtime");
  if (mode === undefined || mtime === undefined) return null;
  const size = num("st_size");
  return {
    mode: BigInt(Math.trunc(Number(mode))),
    uid: BigInt(Math.trunc(Number(num("st_uid") ?? "0"))),
    gid: BigInt(Math.trunc(Number(num("st_gid") ?? "0"))),
    mtime: Number(mtime),
    mtimeText: mtime,
    size: size === undefined ? undefined : Number(size),
  };
}

/** Content-Type of a file as yas3fs sets it: guessed from the name, else application/octet-stream. */
export function contentTypeOf(name: string): string {
  const ext = path.extname(name).toLowerCase();
  return MIME_TYPES[ext] ?? "application/octet-stream";
}

export function contentTypeFor(kind: EntryKind, name: string): string {
  if (kind === "dir") return DIRECTORY_TYPE;
  if (kind === "symlink") return SYMLINK_TYPE;
  return contentTypeOf(name);
}

/** The common part of Python's `mimetypes` table (what yas3fs uses), by extension. */
const MIME_TYPES: Readonly<Record<string, string>> = {
  ".txt": "text/plain",
  ".text": "text/plain",
  ".log": "text/plain",
  ".conf": "text/plain",
  ".c": "text/plain",
  ".h": "text/plain",
  ".py": "text/x-python",
  ".sh": "application/x-sh",
  ".html": "text/html",
  ".htm": "text/html",
  ".css": "text/css",
  ".csv": "text/csv",
  ".md": "text/markdown",
  ".xml": "text/xml",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".json": "application/json",
  ".pdf": "application/pdf",
  ".zip": "application/zip",
  ".gz": "application/gzip",
  ".tar": "application/x-tar",
  ".bz2": "application/x-bzip2",
  ".doc": "application/msword",
  ".xls": "application/vnd.ms-excel",
  ".ppt": "application/vnd.ms-powerpoint",
  ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".png": "image/png",
  ".gif": "image/gif",
  ".bmp": "image/bmp",
  ".svg": "image/svg+xml",
  ".tif": "image/tiff",
  ".tiff": "image/tiff",
  ".ico": "image/vnd.microsoft.icon",
  ".webp": "image/webp",
  ".mp3": "audio/mpeg",
  ".wav": "audio/x-wav",
  ".mp4": "video/mp4",
  ".mpeg": "video/mpeg",
  ".mov": "video/quicktime",
  ".avi": "video/x-msvideo",
  ".bin": "application/octet-stream",
  ".exe": "application/octet-stream",
  ".so": "application/octet-stream",
  ".wasm": "application/wasm",
  ".yaml": "application/yaml",
  ".yml": "application/yaml",
};
