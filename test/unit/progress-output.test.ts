import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { readStatus, renderStatus } from "../../cli/commands/status-command.ts";
import { createRunConsole, printProgress, renderLive } from "../../master/output.ts";
import type { Progress } from "../../master/progress-meter.ts";
import type { RunReport } from "../../master/report.ts";
import { createStatusRecorder } from "../../report/status-recorder.ts";

const progress = (over: Partial<Progress> = {}): Progress => ({
  phase: "WRITE",
  stage: "content",
  entriesSent: 10_000,
  batchesSent: 40,
  batchesDone: 10,
  written: 2_500,
  validated: 0,
  failed: 3,
  bytes: 1.5e9,
  filesPerSec: 500,
  mbPerSec: 42.5,
  workersAlive: 3,
  workersLost: 1,
  ...over,
});

async function withDir<T>(f: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-progress-"));
  try {
    return await f(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

describe("progress output", () => {
  it("renders the live display: bar, entries, bytes, rates, ETA, workers alive, failures", () => {
    const lines = renderLive(progress(), { elapsedSec: 75, width: 120, expectedWorkers: 4 });
    assert.equal(lines.length, 3);
    assert.match(lines[0] ?? "", /^WRITE \(files\) {2}█+░+ {2}25% {2}batches 10\/40 · 10,000 entries sent$/);
    // 7,500 entries left at 500/s: 15 s.
    assert.match(
      lines[1] ?? "",
      /written 2,500 · validated 0 · 1.50 GB · 500 files\/s · 42.5 MB\/s · ETA 0:15/,
    );
    assert.match(lines[2] ?? "", /workers 3\/4 alive, 1 lost · failures 3 · 1:15 elapsed/);
    const waiting = renderLive(progress({ phase: "INITIALIZING", batchesSent: 0 }), {
      elapsedSec: 5,
      width: 80,
      expectedWorkers: 4,
    });
    assert.match(waiting[0] ?? "", /^INITIALIZING {2}waiting/);
    for (const l of renderLive(progress(), { elapsedSec: 1, width: 40, expectedWorkers: 4 }))
      assert.ok(l.length <= 40);
  });

  it("on a terminal, redraws the display in place and keeps log lines above it", () => {
    let out = "";
    const c = createRunConsole({
      format: "text",
      quiet: false,
      component: "master",
      expectedWorkers: 4,
      tty: true,
      write: (s) => {
        out += s;
      },
      columns: () => 100,
    });
    printProgress(progress(), c, "text");
    assert.ok(out.includes("WRITE (files)") && !out.includes("\x1b[3A"));
    out = "";
    printProgress(progress({ batchesDone: 20 }), c, "text");
    assert.ok(out.startsWith("\x1b[3A\x1b[0J"), "moves up over the old display and clears it");
    assert.match(out, /50%/);
    out = "";
    c.warn("a worker is slow");
    const clearDisplay = "\x1b[3A\x1b[0J";
    assert.ok(out.startsWith(clearDisplay));
    assert.match(out.slice(clearDisplay.length), /WARN \[master\] a worker is slow\n.*WRITE \(files\)/s);
  });

  it("off a terminal, prints a compact line; with JSON, a progress event; with --quiet, nothing", () => {
    const lines: string[] = [];
    const make = (format: "text" | "json", quiet: boolean) =>
      createRunConsole({
        format,
        quiet,
        component: "master",
        expectedWorkers: 4,
        tty: false,
        write: (s) => lines.push(s),
      });
    printProgress(progress(), make("text", false), "text");
    assert.match(
      lines.pop() ?? "",
      /\[master\] WRITE: written 2500, validated 0, failed 3 \| 500 entries\/s, 42.5 MB\/s \| batches 10\/40 \| workers 3 \(1 lost\)\n$/,
    );
    printProgress(progress(), make("json", false), "json");
    const json = JSON.parse(lines.pop() ?? "{}");
    assert.equal(json.event, "progress");
    assert.equal(json.written, 2500);
    const quiet = make("text", true);
    printProgress(progress(), quiet, "text");
    quiet.info("an info line");
    assert.equal(lines.length, 0);
    quiet.info("run r2 SUCCEEDED in 3 s\n  entries 5", { event: "summary" });
    quiet.warn("still warned");
    assert.match(lines.join(""), /run r2 SUCCEEDED in 3 s.*\n.*WARN \[master\] still warned/);
    assert.doesNotMatch(lines.join(""), /entries 5/);
  });

  it("writes the status file that `status` reads, and the timeline into the report", () => {
    return withDir(async (dir) => {
      let t = 1_700_000_000_000;
      const status = createStatusRecorder({
        runId: "run-a",
        stateDir: dir,
        source: "/src",
        expectedWorkers: 4,
        now: () => t,
      });
      const c = createRunConsole({
        format: "text",
        quiet: true,
        component: "master",
        expectedWorkers: 4,
        tty: false,
        write: () => {},
        now: () => t,
        onProgress: status.progress,
      });
      t += 2_000;
      c.progress(progress());
      t += 2_000;
      c.progress(progress({ phase: "VALIDATE", stage: "content", validated: 100 }));
      const found = await readStatus(dir);
      assert.equal(found?.status.runId, "run-a");
      assert.equal(found?.status.progress?.phase, "VALIDATE");
      const text = renderStatus(found?.status ?? assert.fail(), t);
      assert.match(text, /run run-a {2}source \/src/);
      assert.match(text, /running; last update 0 s ago/);
      assert.match(text, /VALIDATE \(files\)/);
      c.endDisplay();
      const report = status.finish(
        {
          runId: "run-a",
          outcome: "succeeded",
          failureReason: null,
          endedAt: new Date(t).toISOString(),
        } as RunReport,
        c,
      );
      assert.deepEqual(
        report.timeline?.map((s) => [s.t, s.phase]),
        [
          [2, "WRITE"],
          [4, "VALIDATE"],
        ],
      );
      const ended = await readStatus(dir, "run-a");
      assert.equal(ended?.status.ended?.outcome, "succeeded");
      assert.match(renderStatus(ended?.status ?? assert.fail(), t), /ended .*: SUCCEEDED/);
    });
  });
});
