/**
 * How a worker's session ends, beside the reducer in `session.ts`: a signal's stop (drain, then end) and abort
 * (put back and end now), a master fallen silent, and a Spot interruption notice: take no new batch, finish
 * what is in hand until the drain's bound, then put back what is still running, and end with the reason.
 * Pure, like the reducer: each function takes the state and the commands so far and returns the next state.
 */
import type { Command, SessionEnd, SessionEvent, SessionState } from "./session-types.ts";

export type { InterruptionNotice, InterruptionState } from "./session-types.ts";

/** The drain ends this long before EC2 takes the instance: time for the last reports and the goodbye. */
export const INTERRUPTION_MARGIN_MS = 20_000;

export const SPOT_REASON = "spot interruption";

export function finish(s: SessionState, out: Command[], end: SessionEnd): SessionState {
  out.push({ type: "end", end });
  return { ...s, end };
}

function heldBy(s: SessionState, status?: "running" | "reporting"): string[] {
  return Object.entries(s.held)
    .filter(([, h]) => status === undefined || h.status === status)
    .map(([r]) => r);
}

/** First signal: take no new work, drain, report, then end. */
export function onStop(s: SessionState, reason: string, out: Command[]): SessionState {
  if (s.stopping) return s;
  out.push({ type: "log", level: "info", message: `${reason}: finishing the batches in hand` });
  return { ...s, stopping: reason };
}

/** Second signal, or a drain past its bound: put back what is held and end now. */
export function onAbort(s: SessionState, reason: string, out: Command[]): SessionState {
  const held = heldBy(s);
  out.push({ type: "abort-work", reason });
  const next = finish({ ...s, held: {} }, out, { why: "stopped", reason, exitCode: 130 });
  if (held.length > 0) out.push({ type: "release", receipts: held, why: reason });
  return next;
}

/**
 * EC2 will take the instance: no new batch from now on (the session is stopping), and a bound on the drain
 * that leaves time to report before the instance goes. A second notice changes nothing.
 */
export function onInterruption(
  s: SessionState,
  e: Extract<SessionEvent, { type: "interruption" }>,
  out: Command[],
): SessionState {
  if (s.interruption) return s;
  const byBound = e.at + s.settings.interruptionDrainMs;
  const byEc2 = e.notice.takenAtMs === null ? byBound : e.notice.takenAtMs - INTERRUPTION_MARGIN_MS;
  const drainUntilMs = Math.max(e.at, Math.min(byBound, byEc2));
  const when = e.notice.takenAtMs === null ? "" : ` at ${new Date(e.notice.takenAtMs).toISOString()}`;
  out.push({
    type: "log",
    level: "warn",
    message: `Spot interruption notice (${e.notice.action}${when}): taking no new batch, finishing the ${heldBy(s).length} in hand until ${new Date(drainUntilMs).toISOString()}, then putting back what is left`,
  });
  return {
    ...s,
    stopping: s.stopping ?? SPOT_REASON,
    interruption: { ...e.notice, noticedAtMs: e.at, drainUntilMs },
  };
}

/** Nothing held any more and no hook running: a drain (after a signal or a notice) is over. */
export function drainedEnd(s: SessionState, out: Command[]): SessionState {
  if (!s.stopping || Object.keys(s.held).length > 0 || s.hook === "running") return s;
  if (!s.interruption) return finish(s, out, { why: "stopped", reason: s.stopping, exitCode: 130 });
  return finish(s, out, {
    why: "interrupted",
    reason: `${SPOT_REASON}: drained, every batch it held finished and reported`,
    exitCode: 0,
  });
}

/**
 * At the drain's bound after a notice: what is still running is given up and put back for the other workers;
 * finished batches stay held until their results are sent (then deleted), so nothing finished is redone.
 */
export function interruptionDue(s: SessionState, at: number, out: Command[]): SessionState {
  if (!s.interruption || s.end || at < s.interruption.drainUntilMs) return s;
  const unfinished = heldBy(s, "running");
  const held = Object.fromEntries(Object.entries(s.held).filter(([, h]) => h.status === "reporting"));
  const reason = `${SPOT_REASON}: put back ${unfinished.length} unfinished batch(es) at the drain's bound`;
  out.push({ type: "log", level: "warn", message: reason });
  out.push({ type: "abort-work", reason: SPOT_REASON });
  const next = finish({ ...s, held }, out, { why: "interrupted", reason, exitCode: 0 });
  if (unfinished.length > 0) out.push({ type: "release", receipts: unfinished, why: SPOT_REASON });
  return next;
}

/**
 * No MODE past the bound, and a poll begun after it brought none (a frozen process wakes with its clock far
 * ahead; it must poll once before it calls the master gone): put back what is held and leave.
 */
export function masterSilent(s: SessionState, at: number, out: Command[]): SessionState {
  const deadline = s.lastHeardMs + s.settings.masterTimeoutMs;
  if (at <= deadline || (s.lastPollStartMs < deadline && s.control !== "rejoining")) return s;
  const sec = Math.round(s.settings.masterTimeoutMs / 1000);
  const held = heldBy(s);
  const reason = `no word from the master for ${sec} s (--master-timeout-sec): released ${held.length} batch(es) it held, leaving`;
  out.push({ type: "log", level: "error", message: reason });
  out.push({ type: "abort-work", reason: "the master is gone" });
  // Ended first (no TOC read in flight may take them again), then put back.
  const next = finish({ ...s, held: {} }, out, { why: "master-silent", reason, exitCode: 1 });
  if (held.length > 0) out.push({ type: "release", receipts: held, why: "the master is gone" });
  return next;
}
