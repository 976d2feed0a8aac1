/**
 * How `local` and `master` end a run that reported: the live display closed, the status file's last word, the
 * JSON and HTML reports written, the summary printed, and the exit code from the outcome.
 */
import type { RunConsole } from "../../master/output.ts";
import { printSummary, writeReport } from "../../master/output.ts";
import { exitCodeOf, type RunReport } from "../../master/report.ts";
import { writeHtmlReport } from "../../report/html-report.ts";
import type { StatusRecorder } from "../../report/status-recorder.ts";

export async function endRun(
  report: RunReport,
  o: {
    readonly log: RunConsole;
    readonly status: StatusRecorder;
    readonly reportFile: string | undefined;
    readonly reportHtml: string | undefined;
  },
): Promise<number> {
  o.log.endDisplay();
  const full = o.status.finish(report, o.log);
  if (o.reportFile) await writeReport(o.reportFile, full);
  if (o.reportHtml) await writeHtmlReport(o.reportHtml, full);
  printSummary(full, o.log, o.reportFile);
  return exitCodeOf(report.outcome);
}
