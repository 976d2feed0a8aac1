/**
 * The run's TOC on disk, written while the crawl runs and read back for the later stages (directories last,
 * then VALIDATE), so the master never holds the tree in memory. One JSON line per entry, in wire form.
 *
 * Both directions move the text in chunks of about 64 KiB, not a stream write or a line event per entry: a
 * million-entry TOC then leaves little behind for the garbage collector to promote and sweep later.
 */
import { once } from "node:events";
import { createReadStream, createWriteStream, type WriteStream } from "node:fs";
import { entryFromWire, entryToWire, type TocEntry } from "../core/messages.ts";

const CHUNK_CHARS = 64 * 1024;

export class TocFileWriter {
  private readonly stream: WriteStream;
  private pending = "";
  count = 0;

  constructor(readonly file: string) {
    this.stream = createWriteStream(file, { flags: "w" });
  }

  async write(entry: TocEntry): Promise<void> {
    this.count++;
    this.pending += `${JSON.stringify(entryToWire(entry))}\n`;
    if (this.pending.length >= CHUNK_CHARS) await this.flush();
  }

  async close(): Promise<void> {
    await this.flush();
    this.stream.end();
    await once(this.stream, "finish");
  }

  private async flush(): Promise<void> {
    if (this.pending === "") return;
    const chunk = this.pending;
    this.pending = "";
    if (!this.stream.write(chunk)) await once(this.stream, "drain");
  }
}

export async function* readTocFile(file: string): AsyncGenerator<TocEntry> {
  let rest = "";
  for await (const chunk of createReadStream(file, { encoding: "utf8" }) as AsyncIterable<string>) {
    const text = rest + chunk;
    let start = 0;
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", start)) {
      if (nl > start) yield entryFromWire(JSON.parse(text.slice(start, nl)));
      start = nl + 1;
    }
    rest = text.slice(start);
  }
  if (rest.length > 0) yield entryFromWire(JSON.parse(rest));
}
