/**
 * moto's instances run nothing, so the test plays each one: it reads what the instance carries (its id, its
 * run tag, its user data), takes from the boot script the files it writes (the worker's environment file, the
 * hooks) and the worker bundle it downloads, and starts that bundle as systemd would, with that environment
 * and the instance's identity (what the boot hook reads from the instance metadata). What the instance mounts
 * is stood in for on this machine: the NFS source by a local directory, the yas3fs target by the bucket
 * itself (the worker's S3 target writes the same objects). When the worker ends its run it powers the
 * instance off, which the launch template makes a termination; when EC2 terminates the instance, systemd
 * stops the worker with SIGTERM.
 */

import fs from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  type EC2Client,
  type Instance,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { FLEET_TAGS } from "../../core/deployment.ts";
import { ENV } from "../../core/env-names.ts";
import { WORKER_PATHS } from "../../lib/user-data.ts";
import { startImds } from "../helpers/imds.ts";
import type { Proc } from "../helpers/run.ts";
import { startScript } from "../helpers/run.ts";

/** What the workers' boot script sets up, read back from the script itself. */
export interface BootScript {
  /** Files the script writes, by path. */
  readonly files: ReadonlyMap<string, string>;
  /** The worker's environment file, as the service reads it. */
  readonly env: Readonly<Record<string, string>>;
  /** `s3://…` of the worker bundle it downloads. */
  readonly bundleUrl: string;
  readonly sourceMount: string;
  readonly targetMount: string;
  /** What yas3fs mounts at `targetMount`: `s3://bucket[/prefix]`. */
  readonly targetUrl: string;
  /** The instance tag the boot hook reads the run id from. */
  readonly runTagKey: string;
}

export function readBootScript(userData: string): BootScript {
  const files = new Map<string, string>();
  for (const m of userData.matchAll(/^cat >'?([^'\s]+)'? <<'S3BL_EOF'\n([\s\S]*?)^S3BL_EOF$/gm)) {
    files.set(m[1] as string, m[2] as string);
  }
  const file = (p: string) => {
    const text = files.get(p);
    if (text === undefined)
      throw new Error(`the boot script writes no ${p}; it writes ${[...files.keys()].join(", ")}`);
    return text;
  };
  const env: Record<string, string> = {};
  for (const line of file(WORKER_PATHS.envFile).split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  const initHook = file(`${WORKER_PATHS.hooks}/before-initialized.sh`);
  const mountHook = file(`${WORKER_PATHS.hooks}/mount-target.sh`);
  return {
    files,
    env,
    bundleUrl: match(
      userData,
      /aws s3 cp .*?'?(s3:\/\/[^'\s]+)'? (\S+)$/m,
      (m) => m[2] === WORKER_PATHS.bundle,
    ),
    sourceMount: match(initHook, /^readonly SOURCE_MOUNT='?([^'\n]+)'?$/m),
    targetMount: match(mountHook, /^readonly TARGET_MOUNT='?([^'\n]+)'?$/m),
    targetUrl: match(mountHook, /yas3fs '?(s3:\/\/[^'\s]+)'? "\$TARGET_MOUNT"/),
    runTagKey: match(initHook, /meta-data\/tags\/instance\/([\w.:+=@-]+)/),
  };
}

function match(text: string, re: RegExp, accept: (m: RegExpExecArray) => boolean = () => true): string {
  const m = new RegExp(re.source, re.flags.includes("g") ? re.flags : `${re.flags}g`);
  for (const found of text.matchAll(m)) {
    if (accept(found as RegExpExecArray)) return found[1] as string;
  }
  throw new Error(`the boot script has no ${re}`);
}

export interface Keys {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export interface PlayOptions {
  /** The harness's own clients (they terminate an instance that powers off). */
  readonly ec2: EC2Client;
  /** An S3 client with the instance role's keys: the boot script downloads the bundle with them. */
  readonly s3: (keys: Keys) => S3Client;
  readonly endpoint: string;
  /** The instance role's keys (with IAM off, any). */
  readonly keys: Keys;
  /** The local directory that stands in for the NFS export. */
  readonly source: string;
  readonly dir: string;
  /** This many of the first instances never boot (a broken image, a stuck boot). */
  readonly silent?: number;
}

export interface PlayedInstance {
  readonly id: string;
  readonly boot?: BootScript;
  /** The environment the worker got. */
  readonly env?: Readonly<Record<string, string>>;
  readonly worker?: Proc;
}

/** Plays the instances of one run until stopped: each one that appears boots its worker, or stays silent. */
export class InstancePlayer {
  readonly played = new Map<string, PlayedInstance>();
  readonly silent: string[] = [];
  /** The last state EC2 reported per instance. */
  readonly states = new Map<string, string>();
  /** Anything that went wrong in the player itself; a test asserts it is empty. */
  readonly problems: string[] = [];
  private readonly stopping = new AbortController();
  private readonly loop: Promise<void>;
  private readonly pending = new Set<Promise<void>>();
  private readonly poweredOff = new Set<string>();
  /** The instances' metadata service, for the Spot notice their workers watch: no request leaves loopback. */
  private readonly imds = startImds();

  constructor(
    private readonly runId: string,
    private readonly o: PlayOptions,
  ) {
    this.loop = this.watch();
  }

  private async watch(): Promise<void> {
    while (!this.stopping.signal.aborted) {
      try {
        const out = await this.o.ec2.send(
          new DescribeInstancesCommand({
            Filters: [{ Name: `tag:${FLEET_TAGS.runId}`, Values: [this.runId] }],
          }),
        );
        for (const i of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) this.see(i);
      } catch (err) {
        this.problems.push(`DescribeInstances: ${String(err)}`);
      }
      await sleep(250);
    }
  }

  private see(i: Instance): void {
    const id = i.InstanceId ?? "";
    const state = i.State?.Name ?? "";
    const first = !this.states.has(id);
    this.states.set(id, state);
    if (first) {
      if (state !== "pending" && state !== "running") return;
      if (this.silent.length < (this.o.silent ?? 0)) {
        this.silent.push(id);
        return;
      }
      this.track(this.boot(i));
      return;
    }
    const w = this.played.get(id)?.worker;
    if ((state === "shutting-down" || state === "terminated") && w && w.child.exitCode === null) {
      // The instance shuts down: systemd stops the worker.
      w.child.kill("SIGTERM");
    }
  }

  private track(p: Promise<void>): void {
    const t = p.catch((err: unknown) => {
      this.problems.push(String(err));
    });
    this.pending.add(t);
    void t.finally(() => this.pending.delete(t));
  }

  private async boot(i: Instance): Promise<void> {
    const id = i.InstanceId ?? "";
    const attr = await this.o.ec2.send(
      new DescribeInstanceAttributeCommand({ InstanceId: id, Attribute: "userData" }),
    );
    const boot = readBootScript(Buffer.from(attr.UserData?.Value ?? "", "base64").toString("utf8"));
    const bundle = await this.download(boot.bundleUrl, id);
    const tags = Object.fromEntries((i.Tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""]));
    // The mounts, stood in for: a value naming a mount point names what is mounted there.
    const mounts: Record<string, string> = {
      [boot.sourceMount]: this.o.source,
      [boot.targetMount]: boot.targetUrl,
    };
    const fromFile = Object.fromEntries(Object.entries(boot.env).map(([k, v]) => [k, mounts[v] ?? v]));
    // The hook remounts yas3fs with a cold cache before VALIDATE; the stand-in reads S3 itself: nothing to remount.
    delete fromFile[ENV.beforeValidateCmd];
    const env: Record<string, string> = {
      // systemd's environment: only what the unit's environment files give, and a PATH.
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      ...fromFile,
      // What the boot hook writes to the instance's environment file from the instance metadata.
      [ENV.workerId]: id,
      ...(tags[boot.runTagKey] ? { [ENV.runId]: tags[boot.runTagKey] as string } : {}),
      // The instance role, and the endpoint (on AWS, the SDK's own).
      [ENV.endpointUrl]: this.o.endpoint,
      [ENV.accessKeyId]: this.o.keys.accessKeyId,
      [ENV.secretAccessKey]: this.o.keys.secretAccessKey,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      [ENV.imdsEndpoint]: (await this.imds).url,
    };
    if (this.stopping.signal.aborted) return;
    const worker = startScript(bundle, [], { env, cwd: path.dirname(bundle) });
    this.played.set(id, { id, boot, env, worker });
    const { code } = await worker.exited;
    // The at-shutdown hook powers off after a run the worker ended itself (exit 0); the template's shutdown
    // behaviour makes that a termination. moto's instances ignore that setting: the test checks it on the
    // template, and terminates the instance as EC2 would.
    if (code === 0 && !this.poweredOff.has(id)) {
      this.poweredOff.add(id);
      await this.o.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    }
  }

  private async download(url: string, id: string): Promise<string> {
    const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
    if (!m) throw new Error(`not an S3 URL: ${url}`);
    const client = this.o.s3(this.o.keys);
    try {
      const out = await client.send(new GetObjectCommand({ Bucket: m[1], Key: m[2] }));
      const file = path.join(this.o.dir, id, path.basename(WORKER_PATHS.bundle));
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(
        file,
        await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
      );
      return file;
    } finally {
      client.destroy();
    }
  }

  /** Stops watching, and waits for the boots in progress and for every worker to exit (killed after `ms`). */
  async stop(ms = 30_000): Promise<void> {
    this.stopping.abort();
    await this.loop;
    const deadline = setTimeout(() => {
      for (const p of this.played.values()) p.worker?.child.kill("SIGKILL");
    }, ms);
    await Promise.all(this.pending);
    clearTimeout(deadline);
    await (await this.imds).close();
  }
}
