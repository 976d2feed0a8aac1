/**
 * The run's TOC on disk, written while the crawl runs and read back for the later stages (directories last,
 * then VALIDATE), so the master never holds the tree in memory. One JSON line per entry, in wire form.
 */
import { once } from "node:events";
import { createReadStream, createWriteStream, type WriteStream } from "node:fs";
import readline from "node:readline";
import { entryFromWire, entryToWire, type TocEntry } from "../core/messages.ts";

export class TocFileWriter {
  private readonly stream: WriteStream;
  count = 0;

  constructor(readonly file: string) {
    this.stream = createWriteStream(file, { flags: "w" });
  }

  async write(entry: TocEntry): Promise<void> {
    this.count++;
    if (!this.stream.write(`${JSON.stringify(entryToWire(entry))}\n`)) await once(this.stream, "drain");
  }

  async close(): Promise<void> {
    this.stream.end();
    await once(this.stream, "finish");
  }
}

export async function* readTocFile(file: string): AsyncGenerator<TocEntry> {
  const lines = readline.createInterface({
    input: createReadStream(file),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  for await (const line of lines) {
    if (line.length === 0) continue;
    yield entryFromWire(JSON.parse(line));
  }
}
